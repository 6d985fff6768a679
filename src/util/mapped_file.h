#pragma once
// A read-only memory map of a whole file. Weights are used in place from the map (no copy), so a
// 16 GB checkpoint costs page cache, not heap.
#include <cstddef>
#include <filesystem>
#include <span>

namespace dsa {

class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);  // throws dsa::Error naming the file
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace dsa
