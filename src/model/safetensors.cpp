// safetensors validation and tensor lookup. Every field of the header is checked before any view is handed
// out, so later code can index tensors without bounds checks.
#include "model/safetensors.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "util/error.h"

namespace dsa {

namespace {

using nlohmann::json;

constexpr size_t kLengthBytes = 8;  // u64 little-endian header length

std::optional<DType> dtype_from_safetensors(const std::string& s) {
    if (s == "F32") return DType::F32;
    if (s == "F16") return DType::F16;
    if (s == "BF16") return DType::BF16;
    return std::nullopt;
}

uint64_t read_u64_le(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
    return v;
}

uint64_t json_u64(const json& v, const std::string& file, const std::string& tensor, const char* what) {
    // nlohmann parses every non-negative integer literal as unsigned.
    if (!v.is_number_unsigned()) {
        throw Error("{}: tensor '{}': {} must be non-negative integers, got {}", file, tensor, what,
                    v.dump());
    }
    return v.get<uint64_t>();
}

struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const json& v, const std::string& file) {
    if (!v.is_object()) throw Error("{}: header entry '{}' must be an object, got {}", file, name, v.dump());
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || sh == v.end() || off == v.end()) {
        throw Error("{}: tensor '{}' needs 'dtype', 'shape' and 'data_offsets' in the header", file, name);
    }
    Entry e{name, DType::F32, {}, 0, 0};
    const std::string dtype = dt->is_string() ? dt->get<std::string>() : dt->dump();
    const auto parsed = dtype_from_safetensors(dtype);
    if (!parsed) throw Error("{}: tensor '{}' has dtype {} (supported: F32, F16, BF16)", file, name, dtype);
    e.dtype = *parsed;

    if (!sh->is_array()) throw Error("{}: tensor '{}': shape must be a list, got {}", file, name, sh->dump());
    // numel must not overflow: keep it below 2^62 (no real tensor comes close).
    constexpr uint64_t kMaxNumel = uint64_t{1} << 62;
    uint64_t numel = 1;
    for (const json& d : *sh) {
        const uint64_t n = json_u64(d, file, name, "shape entries");
        if (n != 0 && numel > kMaxNumel / n) {
            throw Error("{}: tensor '{}': shape {} is too large", file, name, sh->dump());
        }
        numel *= n;
        e.shape.push_back(static_cast<int64_t>(n));
    }
    if (!off->is_array() || off->size() != 2) {
        throw Error("{}: tensor '{}': data_offsets must be [begin, end], got {}", file, name, off->dump());
    }
    e.begin = json_u64((*off)[0], file, name, "data_offsets");
    e.end = json_u64((*off)[1], file, name, "data_offsets");
    if (e.end < e.begin) {
        throw Error("{}: tensor '{}': data_offsets [{}, {}] end before they begin", file, name, e.begin,
                    e.end);
    }
    const uint64_t need = numel * dtype_size(e.dtype);
    if (e.end - e.begin != need) {
        throw Error("{}: tensor '{}': data_offsets [{}, {}] span {} bytes but shape {} of {} needs {} bytes",
                    file, name, e.begin, e.end, e.end - e.begin, shape_to_string(e.shape),
                    dtype_name(e.dtype), need);
    }
    return e;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : file_(std::make_unique<MappedFile>(path)) {
    const std::string file = path.string();
    const std::span<const std::byte> bytes = file_->bytes();
    if (bytes.size() < kLengthBytes) {
        throw Error("{}: truncated safetensors file: {} bytes, need at least {} for the header length", file,
                    bytes.size(), kLengthBytes);
    }
    const uint64_t header_len = read_u64_le(bytes.data());
    if (header_len > bytes.size() - kLengthBytes) {
        throw Error("{}: header length {} runs past the end of the file ({} bytes)", file, header_len,
                    bytes.size());
    }
    const char* header_begin = reinterpret_cast<const char*>(bytes.data() + kLengthBytes);
    json header;
    try {
        header = json::parse(header_begin, header_begin + header_len);
    } catch (const json::parse_error& e) {
        throw Error("{}: header is not valid JSON: {}", file, e.what());
    }
    if (!header.is_object()) throw Error("{}: header must be a JSON object", file);

    const size_t data_offset = kLengthBytes + header_len;
    const uint64_t data_size = bytes.size() - data_offset;
    const std::byte* data = bytes.data() + data_offset;

    std::vector<Entry> entries;
    for (const auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            if (!v.is_object() && !v.is_null()) throw Error("{}: __metadata__ must be an object", file);
            continue;
        }
        entries.push_back(parse_entry(name, v, file));
    }

    // Overlap: sort by begin; every non-empty tensor must start at or after the previous one's end.
    std::vector<const Entry*> order;
    for (const Entry& e : entries) {
        if (e.end > e.begin) order.push_back(&e);
    }
    std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < order.size(); ++i) {
        const Entry& a = *order[i - 1];
        const Entry& b = *order[i];
        if (b.begin < a.end) {
            throw Error("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", file, a.name, a.begin, a.end,
                        b.name, b.begin, b.end);
        }
    }

    // Range. Writers lay tensors out back to back from offset 0; when the header does that and only the end
    // is missing, the file was cut short (interrupted download), which is the more useful thing to say.
    uint64_t max_end = 0;
    bool back_to_back = true;
    for (size_t i = 0; i < order.size(); ++i) {
        back_to_back &= order[i]->begin == (i == 0 ? 0 : order[i - 1]->end);
        max_end = std::max(max_end, order[i]->end);
    }
    if (max_end > data_size) {
        if (back_to_back) {
            throw Error(
                "{}: truncated file: the header describes {} data bytes but only {} are present (expected "
                "a file of {} bytes, got {})",
                file, max_end, data_size, data_offset + max_end, bytes.size());
        }
        for (const Entry& e : entries) {
            if (e.end > data_size) {
                throw Error(
                    "{}: tensor '{}': data_offsets [{}, {}] out of range: the data region is {} bytes", file,
                    e.name, e.begin, e.end, data_size);
            }
        }
    }

    for (Entry& e : entries) {
        // fp16/bf16 are read as uint16_t, fp32 through aligned loads on the GPU side.
        if ((data_offset + e.begin) % dtype_size(e.dtype) != 0) {
            throw Error("{}: tensor '{}' data at file offset {} is not aligned to its {}-byte elements", file,
                        e.name, data_offset + e.begin, dtype_size(e.dtype));
        }
        TensorView t;
        t.name = e.name;
        t.dtype = e.dtype;
        t.shape = std::move(e.shape);
        t.data = data + e.begin;
        t.nbytes = static_cast<size_t>(e.end - e.begin);
        tensors_.emplace(e.name, std::move(t));
    }
}

TensorStore TensorStore::open_dir(const std::filesystem::path& dir) {
    TensorStore store;
    store.dir_ = dir;
    const auto index_path = dir / "model.safetensors.index.json";
    const auto single_path = dir / "model.safetensors";
    if (std::filesystem::exists(index_path)) {
        const std::string index = index_path.string();
        std::ifstream f(index_path, std::ios::binary);
        if (!f) throw Error("cannot open {}", index);
        std::stringstream ss;
        ss << f.rdbuf();
        json j;
        try {
            j = json::parse(ss.str());
        } catch (const json::parse_error& e) {
            throw Error("{}: malformed JSON: {}", index, e.what());
        }
        const auto wm = j.is_object() ? j.find("weight_map") : j.end();
        if (!j.is_object() || wm == j.end() || !wm->is_object()) {
            throw Error("{}: expected an object with a 'weight_map' object (tensor name -> shard file)",
                        index);
        }
        std::map<std::string, size_t> shard_index;  // shard file name -> index into files_
        for (const auto& [name, shard] : wm->items()) {
            if (!shard.is_string()) {
                throw Error("{}: weight_map entry '{}' must name a shard file, got {}", index, name,
                            shard.dump());
            }
            const std::string shard_name = shard.get<std::string>();
            if (shard_index.count(shard_name)) continue;
            const auto shard_path = dir / shard_name;
            if (!std::filesystem::is_regular_file(shard_path)) {
                throw Error("{}: shard '{}' (holding '{}') does not exist in {}", index, shard_name, name,
                            dir.string());
            }
            shard_index.emplace(shard_name, store.files_.size());
            store.add_file(std::make_unique<SafetensorsFile>(shard_path));
        }
        for (const auto& [name, shard] : wm->items()) {
            const SafetensorsFile& sf = *store.files_[shard_index.at(shard.get<std::string>())];
            if (!sf.tensors().count(name)) {
                throw Error("{}: weight_map puts tensor '{}' in '{}', but that file has no such tensor",
                            index, name, shard.get<std::string>());
            }
        }
    } else if (std::filesystem::exists(single_path)) {
        store.add_file(std::make_unique<SafetensorsFile>(single_path));
    } else {
        throw Error("{}: no model.safetensors or model.safetensors.index.json", dir.string());
    }
    return store;
}

void TensorStore::add_file(std::unique_ptr<SafetensorsFile> file) {
    const size_t index = files_.size();
    for (const auto& [name, view] : file->tensors()) {
        if (auto it = file_of_.find(name); it != file_of_.end()) {
            throw Error("{}: tensor '{}' is also in {}", file->path().string(), name,
                        files_[it->second]->path().string());
        }
        tensors_.emplace(name, view);
        file_of_.emplace(name, index);
    }
    files_.push_back(std::move(file));
}

void TensorStore::add_owned(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::vector<std::byte> bytes) {
    if (tensors_.count(name)) throw Error("tensor '{}' added twice", name);
    TensorView t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    const size_t need = static_cast<size_t>(t.numel()) * dtype_size(dtype);
    if (bytes.size() != need) {
        throw Error("tensor '{}': {} bytes given, shape {} of {} needs {}", name, bytes.size(),
                    shape_to_string(t.shape), dtype_name(dtype), need);
    }
    owned_.push_back(std::make_unique<std::vector<std::byte>>(std::move(bytes)));
    t.data = owned_.back()->data();
    t.nbytes = need;
    tensors_.emplace(name, std::move(t));
}

const TensorView* TensorStore::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& TensorStore::get(const std::string& name) const {
    if (const TensorView* t = find(name)) return *t;
    if (dir_.empty()) throw Error("missing tensor {}", name);
    throw Error("{}: missing tensor {}", dir_.string(), name);
}

size_t TensorStore::total_bytes() const {
    size_t n = 0;
    for (const auto& [name, t] : tensors_) n += t.nbytes;
    return n;
}

std::string TensorStore::origin(const std::string& name) const {
    auto it = file_of_.find(name);
    return it == file_of_.end() ? std::string("owned buffer") : files_[it->second]->path().string();
}

}  // namespace dsa
