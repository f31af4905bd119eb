// ESM_HD marks functions compiled for both the host and the device: `__host__ __device__`
// under nvcc, nothing for the plain C++ compiler. Code marked with it is shared by the CPU
// kernels and their CUDA twins (one source, so both give the same integers).
#pragma once

#if defined(__CUDACC__)
#define ESM_HD __host__ __device__
#else
#define ESM_HD
#endif
