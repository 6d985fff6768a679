# tools/cuda_bench: CUDA backend benchmarks (copy bandwidth, decode attention, random-weight model).
# Included by the top-level CMakeLists.txt when the CUDA backend is built.
add_executable(cuda_bench ${CMAKE_SOURCE_DIR}/tools/cuda_bench.cpp ${CMAKE_SOURCE_DIR}/tools/cuda_bench_fill.cu)
target_compile_options(cuda_bench PRIVATE ${DSA_CXX_WARNINGS})
target_link_libraries(cuda_bench PRIVATE dsa_core CLI11::CLI11)
