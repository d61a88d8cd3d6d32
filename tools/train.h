/* tools/train.h - the `ryft train` subcommand (tools/train.c). */
#ifndef RYFT_TOOLS_TRAIN_H
#define RYFT_TOOLS_TRAIN_H

/* argv holds the arguments after "train"; returns the exit status
 * (0 success, 1 failure, 2 bad command line). */
int ryft_cmd_train(int argc, char **argv);

#endif
