#pragma once
// Head dims the attention kernels are compiled for: multiples of 16 (one mma k-step) up to 128. Real models
// use 64 and 128; the small test models use 16 and 48.
#include <string>

#include "backend/cuda/cuda_check.h"

// Calls the body (the variadic arguments) with `constexpr int D = <head_dim>;` in scope; throws for other
// head dims.
#define DSA_DISPATCH_HEAD_DIM(HEAD_DIM, ...)                                                  \
    switch (HEAD_DIM) {                                                                       \
        case 16: {                                                                            \
            constexpr int D = 16;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 32: {                                                                            \
            constexpr int D = 32;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 48: {                                                                            \
            constexpr int D = 48;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 64: {                                                                            \
            constexpr int D = 64;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 80: {                                                                            \
            constexpr int D = 80;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 96: {                                                                            \
            constexpr int D = 96;                                                             \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 112: {                                                                           \
            constexpr int D = 112;                                                            \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        case 128: {                                                                           \
            constexpr int D = 128;                                                            \
            __VA_ARGS__;                                                                      \
            break;                                                                            \
        }                                                                                     \
        default:                                                                              \
            ::dsa::cuda::throw_error("CUDA attention: head_dim " + std::to_string(HEAD_DIM) + \
                                     " is not supported (a multiple of 16 up to 128)");       \
    }
