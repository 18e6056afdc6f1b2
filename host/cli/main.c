/*
 * main.c - the gpu-als command line: dispatch to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "gpuals.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("gpu-als %s\n", GPUALS_VERSION);
        return 0;
    }
    fprintf(stderr, "gpu-als: the command line is being assembled\n");
    return 2;
}
