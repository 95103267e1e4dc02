/*
 * serve.h: the `augment serve` subcommand (the augment process).
 */
#ifndef NF_AUGMENT_SERVE_H
#define NF_AUGMENT_SERVE_H

// Runs `augment serve ...` (argv[1] is "serve"). Returns the exit status.
int augment_serve_main(int argc, char **argv);

#endif
