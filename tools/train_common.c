/* What the training commands share (tools/train_common.h). */
#define _POSIX_C_SOURCE 200809L
#include "train_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ryft/ryft.h"

double tr_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tr_parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return 0;
  *out = v;
  return 1;
}

int tr_parse_f64(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

FILE *tr_open_log(const char *path, bool append) {
  int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
  FILE *f = fd >= 0 ? fdopen(fd, append ? "a" : "w") : NULL;
  if (!f && fd >= 0) close(fd);
  return f;
}

static void fmt_eta(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 359999) s = 0;
  int si = (int)(s + 0.5);
  if (si >= 60)
    snprintf(buf, n, "%dm%02ds", si / 60, si % 60);
  else
    snprintf(buf, n, "%ds", si);
}

void tr_progress_start(tr_progress *p, int64_t total) {
  p->tty = isatty(fileno(stdout));
  p->t0 = tr_now_s();
  p->last_draw = 0;
  p->total = total;
  p->next_line = total / 4 > 0 ? total / 4 : 1;
}

void tr_progress_draw(tr_progress *p, const char *label, int64_t step, double loss, int final) {
  double t = tr_now_s(), el = t - p->t0;
  double rate = el > 0 ? (double)step / el : 0;
  char eta[32], speed[64];
  fmt_eta(rate > 0 ? (double)(p->total - step) / rate : 0, eta, sizeof eta);
  if (p->unit)
    snprintf(speed, sizeof speed, "%.0f %s/s", rate * p->per_step, p->unit);
  else
    snprintf(speed, sizeof speed, "%.1f steps/s", rate);
  if (p->tty) {
    if (!final && t - p->last_draw < 0.1) return;
    p->last_draw = t;
    int width = 30, fill = p->total ? (int)(width * step / p->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    printf("\r%s [%s] %" PRId64 "/%" PRId64 " loss %.4f %s ETA %s   ", label, bar, step, p->total, loss, speed, eta);
    if (final) printf("\n");
    fflush(stdout);
  } else if (final || step >= p->next_line) {
    printf("%s step %" PRId64 "/%" PRId64 " loss %.4f %s ETA %s\n", label, step, p->total, loss, speed, eta);
    fflush(stdout);
    int64_t q = p->total / 4 > 0 ? p->total / 4 : 1;
    while (p->next_line <= step) p->next_line += q;
  }
}

int tr_plot_safe_dir(const char *dir) {
  /* dir goes into gnuplot's script in single quotes: a quote or a newline
     there would make the rest of the name gnuplot commands (which include
     `system`) */
  return strpbrk(dir, "'\n\r") == NULL;
}

void tr_plot(const char *dir, const char *csv_name, const char *body) {
  if (!tr_plot_safe_dir(dir)) {
    printf("no plot: the output directory's name has a quote or a line break (the numbers are in %s/%s)\n", dir, csv_name);
    return;
  }
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    printf("gnuplot not installed: no plot (the numbers are in %s/%s)\n", dir, csv_name);
    return;
  }
  FILE *g = popen("gnuplot 2>/dev/null", "w");
  if (!g) return;
  fprintf(g, "set terminal pngcairo size 900,400 noenhanced\nset output '%s/loss.png'\nset datafile separator ','\n%s", dir, body);
  int rc = pclose(g);
  if (rc == 0)
    printf("plot: %s/loss.png\n", dir);
  else
    printf("gnuplot failed (status %d): no plot\n", rc);
}

int tr_run_ranks(const char *cmd, int *argc, char ***argv, int (*run)(const void *ctx), const void *ctx) {
  if (!ry_dist_launched()) return run(ctx);
  ry_status s = ry_dist_init(argc, argv);
  if (s) {
    fprintf(stderr, "ryft %s: started by mpirun: %s\n", cmd, ry_status_message(s));
    ry_status_free(s);
    return 1;
  }
  int rc = run(ctx);
  if (rc != 0) ry_dist_abort(rc);
  if ((s = ry_dist_finalize())) {
    fprintf(stderr, "ryft %s: %s\n", cmd, ry_status_message(s));
    ry_status_free(s);
    return 1;
  }
  return rc;
}
