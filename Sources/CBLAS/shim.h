#ifndef MISS_CBLAS_SHIM_H
#define MISS_CBLAS_SHIM_H
// OpenBLAS from Debian's libopenblas-dev: cblas.h also declares openblas_set_num_threads.
#include <cblas.h>
#endif
