/* tools/train_lm.h - the `ryft train-lm` subcommand (tools/train_lm.c). */
#ifndef RYFT_TOOLS_TRAIN_LM_H
#define RYFT_TOOLS_TRAIN_LM_H

/* argv holds the arguments after "train-lm"; returns the exit status
 * (0 success, 1 failure, 2 bad command line). */
int ryft_cmd_train_lm(int argc, char **argv);

#endif
