/* `ryft generate` and `ryft chat` (tools/generate.c). */
#ifndef RYFT_TOOLS_GENERATE_H
#define RYFT_TOOLS_GENERATE_H

/* argv: the arguments after the command; is_chat: `ryft chat`. Returns the
 * exit status. */
int ryft_cmd_generate(int argc, char **argv, int is_chat);

#endif
