#pragma once
// safetensors reader: mmap, validate, expose tensors as TensorViews without copying.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
// "__metadata__": {...}}, then the data region; offsets are relative to the data region.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/tensor.h"
#include "util/mapped_file.h"

namespace dsa {

class SafetensorsFile {
public:
    // Validates everything before returning: header length inside the file, JSON well formed, dtype one of
    // F32/F16/BF16, offsets in range, no two tensors overlapping, byte size == numel * dtype size, data
    // aligned to the element size. Throws dsa::Error naming the file and the offending tensor.
    explicit SafetensorsFile(const std::filesystem::path& path);

    const std::map<std::string, TensorView>& tensors() const { return tensors_; }
    const std::filesystem::path& path() const { return file_->path(); }

private:
    std::unique_ptr<MappedFile> file_;
    std::map<std::string, TensorView> tensors_;
};

// All tensors of a model directory: DIR/model.safetensors, or the shards listed by
// DIR/model.safetensors.index.json ("weight_map": name -> file). Also usable with owned buffers
// (random weights), which it keeps alive.
class TensorStore {
public:
    static TensorStore open_dir(const std::filesystem::path& dir);

    // Adds a tensor backed by memory this store owns (used for random-weight models).
    void add_owned(const std::string& name, DType dtype, std::vector<int64_t> shape,
                   std::vector<std::byte> bytes);

    const TensorView* find(const std::string& name) const;
    const TensorView& get(const std::string& name) const;  // throws dsa::Error "missing tensor NAME"
    const std::map<std::string, TensorView>& all() const { return tensors_; }
    size_t total_bytes() const;

    // Where a tensor came from, for error messages: its .safetensors path, or "owned buffer".
    std::string origin(const std::string& name) const;
    const std::filesystem::path& dir() const { return dir_; }

private:
    void add_file(std::unique_ptr<SafetensorsFile> file);

    std::filesystem::path dir_;  // empty for a store of owned buffers
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<std::unique_ptr<std::vector<std::byte>>> owned_;
    std::map<std::string, TensorView> tensors_;
    std::map<std::string, size_t> file_of_;  // tensor name -> index into files_ (absent: owned)
};

}  // namespace dsa
