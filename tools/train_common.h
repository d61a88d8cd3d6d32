/* tools/train_common.h - what the training commands share (`ryft train`,
 * `ryft train-lm`): number parsing, the clock, logs in the output
 * directory, the progress bar and the gnuplot plot. */
#ifndef RYFT_TOOLS_TRAIN_COMMON_H
#define RYFT_TOOLS_TRAIN_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

double tr_now_s(void); /* monotonic seconds */
/* a whole string as a number; 0 when it is not one (or not finite) */
int tr_parse_i64(const char *s, int64_t *out);
int tr_parse_f64(const char *s, double *out);
/* a log in the output directory, appended to on --resume; never through a
 * symbolic link planted under its name. NULL on error (errno set). */
FILE *tr_open_log(const char *path, bool append);

/* The progress bar on a terminal (redrawn at most 10 times a second),
 * otherwise a plain line at each quarter. The rate is steps/s, or
 * `unit`/s with per_step units per step when unit is set ("tokens"). */
typedef struct tr_progress {
  int tty;
  double t0, last_draw;
  int64_t total;     /* steps in this bar */
  int64_t next_line; /* non-tty: print at these steps */
  double per_step;
  const char *unit;
} tr_progress;
/* start a bar of `total` steps */
void tr_progress_start(tr_progress *p, int64_t total);
/* label: "epoch 2/4"; step of total; the running loss */
void tr_progress_draw(tr_progress *p, const char *label, int64_t step, double loss, int final);

/* Run a training command: run(ctx) directly, or, started by mpirun, as one
 * rank of a data-parallel job (MPI set up around it; a failure on this rank
 * ends the job on every rank, since the others would wait for it). `cmd`
 * names the command in errors. Returns run's exit status (0 success). */
int tr_run_ranks(const char *cmd, int *argc, char ***argv, int (*run)(const void *ctx), const void *ctx);

/* Draw DIR/loss.png with gnuplot from `body` (gnuplot commands after the
 * terminal and output lines, naming files under dir). Prints what happened:
 * the plot, gnuplot missing (the numbers are in DIR/csv_name), or a
 * directory name that cannot go into a gnuplot string. */
void tr_plot(const char *dir, const char *csv_name, const char *body);
/* 1 when dir can be pasted into a gnuplot single-quoted string */
int tr_plot_safe_dir(const char *dir);

#endif
