#pragma once
// Prints bench rows as they finish, in one of llama-bench's formats: md (a table), csv (a header line,
// then one line per row), json (one array of objects), jsonl (one object per line). csv/json/jsonl carry
// every field of bench_record(); md shows the columns a reader compares.
#include <cstdio>

#include "bench/bench_params.h"
#include "bench/bench_result.h"

namespace dsa {

class BenchWriter {
public:
    // kernels: the rows are attention steps (--kernels), whose md columns differ.
    BenchWriter(BenchFormat format, std::FILE* out, bool kernels);
    void row(const BenchResult& r);  // prints and flushes it (md, csv: the header before the first row)
    void finish();                   // json: closes the array (an empty one when no row came)

private:
    BenchFormat format_;
    std::FILE* out_;
    bool kernels_;
    int rows_ = 0;
};

}  // namespace dsa
