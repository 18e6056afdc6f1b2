/*
 * device.c - whether this process can use a GPU: the one question every device choice
 * (training, ranking, the CLI's --device gpu check) asks first.
 */
#include <stdio.h>

#include "gpuals.h"
#include "status.h"

#ifdef GPUALS_HAVE_CUDA
#include "gpuals_cuda.h"
#endif

int gpuals_gpu_usable(char *description, size_t len)
{
#ifdef GPUALS_HAVE_CUDA
    return cuda_probe(description, len);
#else
    gpuals_put_note(description, len, "built without CUDA");
    return 0;
#endif
}
