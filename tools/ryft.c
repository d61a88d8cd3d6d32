/* ryft - the command line: check, print and run text IR programs on .npy
 * inputs, list devices, and a demo that traces, compiles and runs a small
 * program. Uses only the public API (ryft/ryft.h).
 *
 * Exit status: 0 success, 1 the command failed (bad program, bad input,
 * runtime error), 2 the command line itself is wrong (usage on stderr). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ryft/ryft.h"
#include "generate.h"
#include "train.h"
#include "train_lm.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char k_usage[] =
    "usage: ryft COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  check FILE              parse and verify a text IR program (docs/IR.md)\n"
    "  print FILE              print a program's canonical text\n"
    "  run FILE [--device NAME] [--in NAME=FILE.npy ...] [--in FILE.npy ...] [--out DIR]\n"
    "                          run @main: inputs by name or in order; prints the\n"
    "                          outputs, or writes DIR/out0.npy, DIR/out1.npy, ...\n"
    "  export FILE --format stablehlo\n"
    "                          print the program as a StableHLO MLIR module\n"
    "  import FILE.mlir        read a StableHLO module (as JAX's lower().as_text()\n"
    "                          writes it) and print it as ryft's text IR; every\n"
    "                          command also reads FILE.mlir in place of FILE\n"
    "  grad FILE [--argnums 0,1,...]\n"
    "                          print the gradient program of @main's scalar output\n"
    "  jvp FILE                print the forward-mode program (inputs x..., t...)\n"
    "  vjp FILE                print a module: the forward program (outputs y...,\n"
    "                          residuals...), the backward program (residuals...,\n"
    "                          ct...) and @main (x..., ct...) -> (y..., ct_x...)\n"
    "  vmap FILE --size N [--in-axes 0,none,...] [--out-axes 0,...]\n"
    "                          print @main vectorized over a new axis of size N\n"
    "  devices                 list the devices\n"
    "  train [OPTIONS]         train a CNN (or --model mlp) on Fashion-MNIST on the\n"
    "                          cpu device (ryft train --help for the options)\n"
    "  train-lm [OPTIONS]      train a GPT-2 language model on English text (Debian's\n"
    "                          fortunes) on the cpu device (ryft train-lm --help)\n"
    "  generate MODEL.gguf -p PROMPT [OPTIONS]\n"
    "                          continue PROMPT with a GGUF language model, tokens\n"
    "                          streamed as they come (ryft generate --help)\n"
    "  chat MODEL.gguf [OPTIONS]\n"
    "                          chat with a GGUF model in its chat template\n"
    "  demo [--device NAME]    trace, compile and run a small program and check it\n"
    "                          against plain C\n"
    "  version                 print the version\n"
    "  help, --help            print this text\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 bad command line\n";

static int usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ryft: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n\n", stderr);
  fputs(k_usage, stderr);
  va_end(ap);
  return EXIT_USAGE;
}

/* Print a failed status and free it. Messages about a file start with the
 * file's name (parse errors carry FILE:LINE:COL); others get "ryft: ". */
static int fail_status(ry_status s, const char *file) {
  const char *msg = ry_status_message(s);
  if (file && strncmp(msg, file, strlen(file)) == 0)
    fprintf(stderr, "%s\n", msg);
  else if (file)
    fprintf(stderr, "%s: %s\n", file, msg);
  else
    fprintf(stderr, "ryft: %s\n", msg);
  ry_status_free(s);
  return EXIT_FAIL;
}

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* `ryft CMD --help`: CMD's entry of k_usage (its line and the indented lines
 * under it), so the usage text lives in one place. 0 if CMD has no entry. */
static int print_command_usage(const char *cmd) {
  size_t n = strlen(cmd);
  for (const char *line = k_usage; *line;) {
    const char *end = strchr(line, '\n');
    if (!end) break;
    if (!strncmp(line, "  ", 2) && !strncmp(line + 2, cmd, n) && (line[2 + n] == ' ' || line[2 + n] == ',')) {
      printf("usage: ryft %.*s\n", (int)(end - line - 2), line + 2);
      for (line = end + 1; !strncmp(line, "    ", 4) && (end = strchr(line, '\n')); line = end + 1)
        printf("%.*s\n", (int)(end - line), line);
      printf("\nexit status: 0 success, 1 failure, 2 bad command line\n");
      return 1;
    }
    line = end + 1;
  }
  return 0;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; 1 if it matched (value set
 * or *missing set when there is no value). */
static int take_option(int argc, char **argv, int *i, const char *name, const char **value, int *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *value = a + n + 1;
    return 1;
  }
  if (a[n] != 0) return 0;
  if (*i + 1 >= argc) {
    *missing = 1;
    return 1;
  }
  *value = argv[++*i];
  return 1;
}

/* ---- check / print ---------------------------------------------------------- */

/* A program file: StableHLO text when it ends in .mlir, else ryft's text IR. */
static ry_status load_program(const char *file, ry_graph **g) {
  size_t n = strlen(file);
  if (n > 5 && strcmp(file + n - 5, ".mlir") == 0) return ry_stablehlo_parse_file(file, g);
  return ry_graph_parse_file(file, g);
}

static int one_file_arg(const char *cmd, int argc, char **argv, const char **file) {
  *file = NULL;
  for (int i = 0; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1] != 0) return usage_error("%s: unknown option '%s'", cmd, argv[i]);
    if (*file) return usage_error("%s: unexpected argument '%s' (one FILE only)", cmd, argv[i]);
    *file = argv[i];
  }
  if (!*file) return usage_error("%s: missing FILE", cmd);
  return EXIT_OK;
}

static int cmd_check(int argc, char **argv) {
  const char *file;
  int rc = one_file_arg("check", argc, argv, &file);
  if (rc) return rc;
  ry_graph *g = NULL;
  ry_status s = load_program(file, &g);
  if (!s) s = ry_graph_verify(g);
  if (s) {
    ry_graph_release(g);
    return fail_status(s, file);
  }
  printf("%s: ok (%d ops)\n", file, ry_graph_num_ops(g));
  ry_graph_release(g);
  return EXIT_OK;
}

static int cmd_print(int argc, char **argv) {
  const char *file;
  int rc = one_file_arg("print", argc, argv, &file);
  if (rc) return rc;
  ry_graph *g = NULL;
  ry_status s = load_program(file, &g);
  if (!s) s = ry_graph_print(g, stdout);
  ry_graph_release(g);
  return s ? fail_status(s, file) : EXIT_OK;
}

static int cmd_import(int argc, char **argv) {
  const char *file;
  int rc = one_file_arg("import", argc, argv, &file);
  if (rc) return rc;
  ry_graph *g = NULL;
  ry_status s = ry_stablehlo_parse_file(file, &g);
  if (!s) s = ry_graph_verify(g);
  if (!s) s = ry_graph_print(g, stdout);
  ry_graph_release(g);
  return s ? fail_status(s, file) : EXIT_OK;
}

static int cmd_export(int argc, char **argv) {
  const char *file = NULL, *format = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--format") == 0) {
      if (i + 1 >= argc) return usage_error("export: --format needs a value");
      format = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      return usage_error("export: unknown option '%s'", argv[i]);
    } else if (file) {
      return usage_error("export: unexpected argument '%s' (one FILE only)", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return usage_error("export: missing FILE");
  if (!format || strcmp(format, "stablehlo") != 0)
    return usage_error("export: --format must be 'stablehlo'%s%s", format ? ", not " : "", format ? format : "");
  ry_graph *g = NULL;
  char *text = NULL;
  ry_status s = load_program(file, &g);
  if (!s) s = ry_stablehlo_emit(g, &text);
  if (!s) fputs(text, stdout);
  ry_free(text);
  ry_graph_release(g);
  return s ? fail_status(s, file) : EXIT_OK;
}

/* ---- transforms ---------------------------------------------------------- */

/* "0,1,none,-1" into ints (none = RY_NOT_BATCHED when allow_none). */
static int parse_int_list(const char *cmd, const char *opt, const char *text, int allow_none, int *out, int cap, int *n) {
  *n = 0;
  const char *p = text;
  while (*p) {
    if (*n == cap) return usage_error("%s: %s has more than %d entries", cmd, opt, cap);
    if (allow_none && strncmp(p, "none", 4) == 0 && (p[4] == ',' || p[4] == 0)) {
      out[(*n)++] = RY_NOT_BATCHED;
      p += 4;
    } else {
      char *end;
      long v = strtol(p, &end, 10);
      if (end == p || v < -1000000 || v > 1000000)
        return usage_error("%s: %s: '%s' is not a list of integers%s", cmd, opt, text, allow_none ? " or 'none'" : "");
      out[(*n)++] = (int)v;
      p = end;
    }
    if (*p == ',') p++;
    else if (*p) return usage_error("%s: %s: unexpected '%c' in '%s'", cmd, opt, *p, text);
  }
  if (*n == 0) return usage_error("%s: %s is empty", cmd, opt);
  return EXIT_OK;
}

static int print_graph_or_fail(ry_status s, ry_graph *g, const char *file) {
  if (!s) s = ry_graph_print(g, stdout);
  ry_graph_release(g);
  return s ? fail_status(s, file) : EXIT_OK;
}

/* One program for `ryft vjp` that prints as a module that parses:
 * @main(x..., ct...) -> (y..., ct_x...) calls fwd, then bwd on the residuals
 * and the cotangents. */
static ry_status vjp_module(ry_graph *f, ry_graph *fwd, ry_graph *bwd, int nres, ry_graph **out) {
  int nin = ry_graph_num_inputs(f), nout = ry_graph_num_outputs(f);
  if (nin + nout > RY_MAX_OUTPUTS || nout + nres > RY_MAX_OUTPUTS)
    return ry_status_make(RY_ERR_UNSUPPORTED, "vjp: too many inputs and outputs to print as one module");
  ry_builder *b = ry_builder_new("main");
  if (!b) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "vjp: out of memory");
  ry_value *x = calloc((size_t)(2 * RY_MAX_OUTPUTS + 2 * nin + nout), sizeof *x);
  if (!x) {
    ry_builder_free(b);
    return ry_status_make(RY_ERR_OUT_OF_MEMORY, "vjp: out of memory");
  }
  /* x[nin], yres[MAX] (outputs, residuals), bwd_in[MAX], res[nout + nin] */
  ry_value *yres = x + nin, *bwd_in = yres + RY_MAX_OUTPUTS, *res = bwd_in + RY_MAX_OUTPUTS;
  for (int i = 0; i < nin; i++) x[i] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  for (int i = 0; i < nout; i++) {
    char name[32];
    snprintf(name, sizeof name, "ct%d", i);
    bwd_in[nres + i] = ry_input(b, name, ry_graph_output_type(f, i));
  }
  ry_call(b, fwd, nin, x, yres);
  for (int i = 0; i < nres; i++) bwd_in[i] = yres[nout + i];
  ry_call(b, bwd, nres + nout, bwd_in, res + nout);
  for (int i = 0; i < nout; i++) res[i] = yres[i];
  ry_status s = ry_builder_finish(b, nout + nin, res, out);
  free(x);
  return s;
}

static int cmd_transform(const char *cmd, int argc, char **argv) {
  const char *file = NULL, *argnums = NULL, *in_axes = NULL, *out_axes = NULL, *size = NULL;
  for (int i = 0; i < argc; i++) {
    const char *v = NULL;
    int missing = 0;
    if (strcmp(cmd, "grad") == 0 && take_option(argc, argv, &i, "--argnums", &v, &missing)) {
      if (missing) return usage_error("%s: --argnums needs a value", cmd);
      argnums = v;
    } else if (strcmp(cmd, "vmap") == 0 && take_option(argc, argv, &i, "--in-axes", &v, &missing)) {
      if (missing) return usage_error("vmap: --in-axes needs a value");
      in_axes = v;
    } else if (strcmp(cmd, "vmap") == 0 && take_option(argc, argv, &i, "--out-axes", &v, &missing)) {
      if (missing) return usage_error("vmap: --out-axes needs a value");
      out_axes = v;
    } else if (strcmp(cmd, "vmap") == 0 && take_option(argc, argv, &i, "--size", &v, &missing)) {
      if (missing) return usage_error("vmap: --size needs a value");
      size = v;
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      return usage_error("%s: unknown option '%s'", cmd, argv[i]);
    } else if (file) {
      return usage_error("%s: unexpected argument '%s' (one FILE only)", cmd, argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!file) return usage_error("%s: missing FILE", cmd);
  int ax[64], nax = 0, oax[64], noax = 0, rc;
  long long n = 0;
  if (argnums && (rc = parse_int_list(cmd, "--argnums", argnums, 0, ax, 64, &nax))) return rc;
  if (in_axes && (rc = parse_int_list(cmd, "--in-axes", in_axes, 1, ax, 64, &nax))) return rc;
  if (out_axes && (rc = parse_int_list(cmd, "--out-axes", out_axes, 0, oax, 64, &noax))) return rc;
  if (strcmp(cmd, "vmap") == 0) {
    char *end = NULL;
    if (!size) return usage_error("vmap: --size N is required (the batch size)");
    n = strtoll(size, &end, 10);
    if (!*size || *end || n < 0) return usage_error("vmap: --size '%s' is not a non-negative integer", size);
  }
  ry_graph *g = NULL, *t = NULL, *t2 = NULL;
  ry_status s = load_program(file, &g);
  if (s) return fail_status(s, file);
  int nin = ry_graph_num_inputs(g), nout = ry_graph_num_outputs(g);
  if (strcmp(cmd, "grad") == 0) {
    int zero = 0;
    ry_grad_opts o = {argnums ? nax : 1, argnums ? ax : &zero, 0};
    s = ry_grad(g, &o, &t);
  } else if (strcmp(cmd, "jvp") == 0) {
    s = ry_jvp(g, &t);
  } else if (strcmp(cmd, "vjp") == 0) {
    int nres = 0;
    s = ry_vjp(g, &t, &t2, &nres);
    if (!s) {
      printf("# vjp of %s: first the forward program (inputs) -> (%d outputs, %d residuals), then the backward program\n"
             "# (%d residuals, %d cotangents) -> (%d input cotangents), and @main (inputs, cotangents) ->\n"
             "# (outputs, input cotangents) calling both\n",
             file, nout, nres, nres, nout, nin);
      ry_graph *both = NULL;
      s = vjp_module(g, t, t2, nres, &both);
      ry_graph_release(t);
      ry_graph_release(t2);
      t = both;
    }
  } else {
    if (in_axes && nax != nin) {
      ry_graph_release(g);
      return usage_error("vmap: --in-axes has %d entries but @main has %d inputs", nax, nin);
    }
    if (out_axes && noax != nout) {
      ry_graph_release(g);
      return usage_error("vmap: --out-axes has %d entries but @main has %d outputs", noax, nout);
    }
    s = ry_vmap(g, n, in_axes ? ax : NULL, out_axes ? oax : NULL, &t);
  }
  ry_graph_release(g);
  return print_graph_or_fail(s, t, file);
}

/* ---- run -------------------------------------------------------------------- */

/* The name of input i as the user writes it: its IR name, or argN. */
static const char *input_label(const ry_graph *g, int i, char *buf, size_t size) {
  const char *n = ry_graph_input_name(g, i);
  if (n && n[0] == '%') n++;
  if (n && *n) return n;
  snprintf(buf, size, "arg%d", i);
  return buf;
}

/* "x: f32[2,3], w: f32[3]" */
static void describe_inputs(const ry_graph *g, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = 0;
  int n = ry_graph_num_inputs(g);
  if (n == 0) snprintf(buf, size, "none");
  for (int i = 0; i < n && len < size; i++) {
    char lb[32], ty[128];
    len += (size_t)snprintf(buf + len, size - len, "%s%s: %s", i ? ", " : "", input_label(g, i, lb, sizeof lb),
                            ry_type_str(ry_graph_input_type(g, i), ty, sizeof ty));
  }
}

/* NAME=FILE when the part before '=' looks like an IR value name. */
static int split_input_spec(const char *spec, char *name, size_t size, const char **file) {
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || (size_t)(eq - spec) >= size) return 0;
  for (const char *p = spec; p < eq; p++)
    if (!(*p == '_' || *p == '.' || *p == '%' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
      return 0;
  const char *n = spec[0] == '%' ? spec + 1 : spec;
  memcpy(name, n, (size_t)(eq - n));
  name[eq - n] = 0;
  *file = eq + 1;
  return 1;
}

typedef struct run_state {
  ry_graph *g;
  ry_device *dev;
  int n_in, n_out;
  const char **in_files; /* per graph input: the .npy path given for it */
  ry_array **in, **out;
} run_state;

static void run_state_free(run_state *r) {
  for (int i = 0; r->in && i < r->n_in; i++) ry_array_release(r->in[i]);
  for (int i = 0; r->out && i < r->n_out; i++) ry_array_release(r->out[i]);
  free(r->in);
  free(r->out);
  free((void *)r->in_files);
  ry_graph_release(r->g);
}

/* Assign the --in specs to graph inputs: names first, then the positional
 * ones in order into the inputs still free. */
static int assign_inputs(run_state *r, int n_specs, const char *const *specs, const char *file) {
  char desc[2048];
  describe_inputs(r->g, desc, sizeof desc);
  for (int k = 0; k < n_specs; k++) {
    char name[256];
    const char *path;
    if (!split_input_spec(specs[k], name, sizeof name, &path)) continue;
    int found = -1;
    for (int i = 0; i < r->n_in && found < 0; i++) {
      char lb[32];
      if (strcmp(input_label(r->g, i, lb, sizeof lb), name) == 0) found = i;
    }
    if (found < 0) {
      fprintf(stderr, "ryft: %s: unknown input '%s'; @main's inputs are: %s\n", file, name, desc);
      return EXIT_FAIL;
    }
    if (r->in_files[found]) {
      fprintf(stderr, "ryft: %s: input '%s' is given more than once (%s and %s)\n", file, name, r->in_files[found],
              path);
      return EXIT_FAIL;
    }
    if (!*path) {
      fprintf(stderr, "ryft: %s: input '%s' has an empty file name\n", file, name);
      return EXIT_FAIL;
    }
    r->in_files[found] = path;
  }
  int next = 0;
  for (int k = 0; k < n_specs; k++) {
    char name[256];
    const char *path;
    if (split_input_spec(specs[k], name, sizeof name, &path)) continue;
    while (next < r->n_in && r->in_files[next]) next++;
    if (next == r->n_in) {
      fprintf(stderr, "ryft: %s: too many inputs: '%s' has no input left to fill; @main takes %d (%s)\n", file,
              specs[k], r->n_in, desc);
      return EXIT_FAIL;
    }
    r->in_files[next++] = specs[k];
  }
  int missing = 0;
  for (int i = 0; i < r->n_in; i++) {
    if (r->in_files[i]) continue;
    char lb[32], ty[128];
    const char *label = input_label(r->g, i, lb, sizeof lb);
    fprintf(stderr, "ryft: %s: missing input '%s' (%s); give it with --in %s=FILE.npy\n", file, label,
            ry_type_str(ry_graph_input_type(r->g, i), ty, sizeof ty), label);
    missing++;
  }
  if (missing) {
    fprintf(stderr, "ryft: @main's inputs are: %s\n", desc);
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static int load_inputs(run_state *r) {
  for (int i = 0; i < r->n_in; i++) {
    ry_status s = ry_npy_read(r->in_files[i], &r->in[i]);
    if (s) return fail_status(s, NULL);
    ry_type want = ry_graph_input_type(r->g, i), got = ry_array_type(r->in[i]);
    if (!ry_type_equal(want, got)) {
      char lb[32], tw[128], tg[128];
      fprintf(stderr, "ryft: input '%s' from %s: expected %s, got %s\n", input_label(r->g, i, lb, sizeof lb),
              r->in_files[i], ry_type_str(want, tw, sizeof tw), ry_type_str(got, tg, sizeof tg));
      return EXIT_FAIL;
    }
  }
  return EXIT_OK;
}

static int write_outputs(run_state *r, const char *dir) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) { /* minus the umask; never more than 0755 */
    fprintf(stderr, "ryft: cannot create output directory %s: %s\n", dir, strerror(errno));
    return EXIT_FAIL;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "ryft: output path %s is not a directory\n", dir);
    return EXIT_FAIL;
  }
  for (int i = 0; i < r->n_out; i++) {
    char path[4096], ty[128];
    int n = snprintf(path, sizeof path, "%s/out%d.npy", dir, i);
    if (n < 0 || (size_t)n >= sizeof path) {
      fprintf(stderr, "ryft: output directory name is too long\n");
      return EXIT_FAIL;
    }
    ry_status s = ry_npy_write(path, r->out[i]);
    if (s) return fail_status(s, NULL);
    printf("wrote %s (%s)\n", path, ry_type_str(ry_array_type(r->out[i]), ty, sizeof ty));
  }
  return EXIT_OK;
}

static int cmd_run(int argc, char **argv) {
  const char *file = NULL, *device = NULL, *out_dir = NULL;
  const char **specs = calloc((size_t)argc + 1, sizeof *specs);
  if (!specs) {
    fputs("ryft: out of memory\n", stderr);
    return EXIT_FAIL;
  }
  int n_specs = 0, rc = EXIT_OK;
  for (int i = 0; i < argc && !rc; i++) {
    const char *v = NULL;
    int missing = 0;
    if (take_option(argc, argv, &i, "--device", &v, &missing)) {
      if (missing) rc = usage_error("run: --device needs a NAME");
      else if (device) rc = usage_error("run: --device is given twice");
      else device = v;
    } else if (take_option(argc, argv, &i, "--in", &v, &missing)) {
      if (missing) rc = usage_error("run: --in needs NAME=FILE.npy or FILE.npy");
      else specs[n_specs++] = v;
    } else if (take_option(argc, argv, &i, "--out", &v, &missing)) {
      if (missing) rc = usage_error("run: --out needs a DIR");
      else if (out_dir) rc = usage_error("run: --out is given twice");
      else out_dir = v;
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      rc = usage_error("run: unknown option '%s'", argv[i]);
    } else if (file) {
      rc = usage_error("run: unexpected argument '%s' (inputs go after --in)", argv[i]);
    } else {
      file = argv[i];
    }
  }
  if (!rc && !file) rc = usage_error("run: missing FILE");
  if (rc) {
    free(specs);
    return rc;
  }

  run_state r = {0};
  ry_status s = load_program(file, &r.g);
  if (s) {
    free(specs);
    return fail_status(s, file);
  }
  s = ry_device_get(device ? device : "interp", &r.dev);
  if (s) {
    free(specs);
    ry_graph_release(r.g);
    return fail_status(s, NULL);
  }
  r.n_in = ry_graph_num_inputs(r.g);
  r.n_out = ry_graph_num_outputs(r.g);
  r.in_files = calloc((size_t)r.n_in + 1, sizeof *r.in_files);
  r.in = calloc((size_t)r.n_in + 1, sizeof *r.in);
  r.out = calloc((size_t)r.n_out + 1, sizeof *r.out);
  if (!r.in_files || !r.in || !r.out) {
    fputs("ryft: out of memory\n", stderr);
    rc = EXIT_FAIL;
  }
  if (!rc) rc = assign_inputs(&r, n_specs, specs, file);
  if (!rc) rc = load_inputs(&r);
  if (!rc) {
    s = ry_run(r.g, r.dev, r.n_in, r.in, r.n_out, r.out);
    if (s) rc = fail_status(s, NULL);
  }
  if (!rc && out_dir) {
    rc = write_outputs(&r, out_dir);
  } else if (!rc) {
    for (int i = 0; i < r.n_out; i++) {
      char ty[128];
      printf("out%d: %s\n", i, ry_type_str(ry_array_type(r.out[i]), ty, sizeof ty));
      ry_array_print(r.out[i], stdout);
    }
  }
  run_state_free(&r);
  free(specs);
  return rc;
}

/* ---- devices / version -------------------------------------------------------- */

static int cmd_devices(int argc, char **argv) {
  if (argc > 0) return usage_error("devices: unexpected argument '%s'", argv[0]);
  int n = ry_device_count();
  for (int i = 0; i < n; i++) {
    ry_device *d = ry_device_at(i);
    if (d) printf("%-10s %s\n", ry_device_name(d), ry_device_description(d));
  }
  return EXIT_OK;
}

static int cmd_version(int argc, char **argv) {
  if (argc > 0) return usage_error("version: unexpected argument '%s'", argv[0]);
  printf("ryft %s\n", ry_version());
  return EXIT_OK;
}

/* ---- demo ---------------------------------------------------------------------- */

enum { DEMO_B = 4, DEMO_I = 3, DEMO_O = 5 };

/* y = tanh(x @ w) * 2;  returns (sum(y, axis=1), softmax(y, axis=1)) */
static int demo_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_matmul(b, in[0], in[1]);                          /* (B, O) */
  ry_value y = ry_mul(b, ry_tanh(b, h), ry_const_like(b, h, 2.0)); /* (B, O) */
  out[0] = ry_sum(b, y, RY_AXES(1));                                /* (B,) */
  out[1] = ry_softmax(b, y, 1);                                     /* (B, O) */
  return 2;
}

/* The same in plain C loops, in double. */
static void demo_reference(const float *x, const float *w, double *sum, double *soft) {
  double y[DEMO_B][DEMO_O];
  for (int i = 0; i < DEMO_B; i++) {
    double mx = -INFINITY, total = 0, z = 0;
    for (int k = 0; k < DEMO_O; k++) {
      double acc = 0;
      for (int j = 0; j < DEMO_I; j++) acc += (double)x[i * DEMO_I + j] * w[j * DEMO_O + k];
      y[i][k] = tanh(acc) * 2;
      total += y[i][k];
      if (y[i][k] > mx) mx = y[i][k];
    }
    sum[i] = total;
    for (int k = 0; k < DEMO_O; k++) z += exp(y[i][k] - mx);
    for (int k = 0; k < DEMO_O; k++) soft[i * DEMO_O + k] = exp(y[i][k] - mx) / z;
  }
}

static double max_err(const ry_array *a, const double *want, int n) {
  double worst = 0;
  if (ry_array_numel(a) != n) return INFINITY;
  for (int i = 0; i < n; i++) {
    double e = fabs(ry_array_get_f64(a, i) - want[i]) / (1 + fabs(want[i]));
    if (!(e <= worst)) worst = e; /* NaN sticks */
  }
  return worst;
}

static int cmd_demo(int argc, char **argv) {
  const char *device = NULL;
  for (int i = 0; i < argc; i++) {
    const char *v = NULL;
    int missing = 0;
    if (take_option(argc, argv, &i, "--device", &v, &missing)) {
      if (missing) return usage_error("demo: --device needs a NAME");
      device = v;
    } else {
      return usage_error("demo: unexpected argument '%s'", argv[i]);
    }
  }
  if (!device) device = "interp";

  float x[DEMO_B * DEMO_I], w[DEMO_I * DEMO_O];
  for (int i = 0; i < DEMO_B * DEMO_I; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  for (int i = 0; i < DEMO_I * DEMO_O; i++) w[i] = (float)((i * 3) % 11) * 0.125f - 0.5f;

  ry_graph *g = NULL;
  ry_device *dev = NULL;
  ry_executable *exe = NULL;
  ry_array *in[2] = {NULL, NULL}, *out[2] = {NULL, NULL};
  int rc = EXIT_FAIL;
  ry_type types[2] = {{RY_F32, RY_SHAPE(DEMO_B, DEMO_I)}, {RY_F32, RY_SHAPE(DEMO_I, DEMO_O)}};
  const char *names[2] = {"x", "w"};

  printf("ryft demo: trace f(x, w) = (sum(y, axis=1), softmax(y, axis=1)) where y = tanh(x @ w) * 2\n\n");
  ry_status s = ry_trace("main", demo_fn, NULL, 2, types, names, &g);
  if (s) goto done;
  printf("== traced IR (%d ops) ==\n", ry_graph_num_ops(g));
  if ((s = ry_graph_print(g, stdout))) goto done;

  if ((s = ry_device_get(device, &dev))) goto done;
  if ((s = ry_compile(g, dev, &exe))) goto done;
  printf("\n== compiled for device \"%s\" (%s) ==\n", ry_device_name(dev), ry_device_description(dev));

  if ((s = ry_array_from_host(RY_F32, types[0].shape, x, &in[0]))) goto done;
  if ((s = ry_array_from_host(RY_F32, types[1].shape, w, &in[1]))) goto done;
  if ((s = ry_execute(exe, 2, in, 2, out))) goto done;

  printf("\n== inputs ==\nx: f32[%d,%d]\n", DEMO_B, DEMO_I);
  ry_array_print(in[0], stdout);
  printf("w: f32[%d,%d]\n", DEMO_I, DEMO_O);
  ry_array_print(in[1], stdout);
  printf("\n== result ==\nsum(y, axis=1): f32[%d]\n", DEMO_B);
  ry_array_print(out[0], stdout);
  printf("softmax(y, axis=1): f32[%d,%d]\n", DEMO_B, DEMO_O);
  ry_array_print(out[1], stdout);

  double ref_sum[DEMO_B], ref_soft[DEMO_B * DEMO_O];
  demo_reference(x, w, ref_sum, ref_soft);
  double e0 = max_err(out[0], ref_sum, DEMO_B), e1 = max_err(out[1], ref_soft, DEMO_B * DEMO_O);
  double e = e0 > e1 || isnan(e0) ? e0 : e1;
  int ok = ry_array_dtype(out[0]) == RY_F32 && ry_array_dtype(out[1]) == RY_F32 && e <= 1e-5;
  printf("\nlargest relative difference from plain C: %.3g (tolerance 1e-05)\n", e);
  printf("result matches plain C: %s\n", ok ? "yes" : "no");
  rc = ok ? EXIT_OK : EXIT_FAIL;

done:
  if (s) rc = fail_status(s, NULL);
  for (int i = 0; i < 2; i++) {
    ry_array_release(in[i]);
    ry_array_release(out[i]);
  }
  ry_executable_free(exe);
  ry_graph_release(g);
  return rc;
}

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("missing COMMAND");
  const char *cmd = argv[1];
  int n = argc - 2;
  char **rest = argv + 2;
  if (strcmp(cmd, "help") == 0 || is_help(cmd)) {
    fputs(k_usage, stdout);
    return EXIT_OK;
  }
  /* training is bitwise reproducible (and --resume bitwise identical to an
     uninterrupted run) only if every step runs compiled code: a step run
     node by node while cc works rounds differently (README, RYFT_COMPILE_SYNC) */
  if (strcmp(cmd, "train") == 0 || strcmp(cmd, "train-lm") == 0) setenv("RYFT_COMPILE_SYNC", "1", 0);
  if (strcmp(cmd, "train") == 0) return ryft_cmd_train(n, rest); /* has its own --help */
  if (strcmp(cmd, "train-lm") == 0) return ryft_cmd_train_lm(n, rest); /* so does this */
  if (strcmp(cmd, "generate") == 0) return ryft_cmd_generate(n, rest, 0); /* so does this */
  if (strcmp(cmd, "chat") == 0) return ryft_cmd_generate(n, rest, 1);
  for (int i = 0; i < n; i++)
    if (is_help(rest[i])) {
      if (!print_command_usage(cmd)) fputs(k_usage, stdout);
      return EXIT_OK;
    }
  if (strcmp(cmd, "check") == 0) return cmd_check(n, rest);
  if (strcmp(cmd, "print") == 0) return cmd_print(n, rest);
  if (strcmp(cmd, "export") == 0) return cmd_export(n, rest);
  if (strcmp(cmd, "import") == 0) return cmd_import(n, rest);
  if (strcmp(cmd, "run") == 0) return cmd_run(n, rest);
  if (strcmp(cmd, "grad") == 0 || strcmp(cmd, "jvp") == 0 || strcmp(cmd, "vjp") == 0 || strcmp(cmd, "vmap") == 0)
    return cmd_transform(cmd, n, rest);
  if (strcmp(cmd, "devices") == 0) return cmd_devices(n, rest);
  if (strcmp(cmd, "demo") == 0) return cmd_demo(n, rest);
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) return cmd_version(n, rest);
  if (cmd[0] == '-') return usage_error("unknown option '%s'", cmd);
  return usage_error("unknown command '%s'", cmd);
}
