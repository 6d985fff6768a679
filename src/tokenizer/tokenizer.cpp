#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/unicode.h"

namespace dsa {

using tok::json;

struct Tokenizer::Impl {
    std::unique_ptr<tok::Normalizer> normalizer;
    std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
    std::unique_ptr<tok::BpeModel> model;
    std::unique_ptr<tok::AddedVocabulary> added;
    std::unique_ptr<tok::PostProcessor> post_processor;
    std::unique_ptr<tok::Decoder> decoder;
    int bos = -1, eos = -1;

    int piece_to_id(std::string_view piece) const {
        if (const auto* a = added->by_content(piece)) return a->id;
        return model->token_to_id(piece);
    }
};

namespace {

std::string read_file(const std::filesystem::path& path, std::string_view what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("{}: cannot open {}", path.string(), what);
    std::stringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw Error("{}: cannot read {}", path.string(), what);
    return ss.str();
}

json parse_json(std::string_view text, std::string_view what) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        throw Error("{} is not valid JSON: {}", what, e.what());
    }
}

const json* optional_component(const json& root, std::string_view key) {
    const auto it = root.find(key);
    return it == root.end() || it->is_null() ? nullptr : &*it;
}

// tokenizer_config.json writes special tokens as "<s>" or as {"content": "<s>", ...}.
std::string config_token(const json& config, std::string_view key) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    throw Error("tokenizer_config.json: '{}' must be a string or an object with 'content'", key);
}

// The ids the post-processor puts before and after a sequence (probe with a marker id).
std::pair<std::vector<int>, std::vector<int>> template_specials(const tok::PostProcessor* post) {
    constexpr int kMarker = -7;
    std::vector<int> ids{kMarker};
    if (post) post->process(ids);
    const auto at = std::find(ids.begin(), ids.end(), kMarker);
    if (at == ids.end()) return {};
    return {std::vector<int>(ids.begin(), at), std::vector<int>(at + 1, ids.end())};
}

void resolve_special_tokens(Tokenizer::Impl& impl, const json& config) {
    auto lookup = [&](std::string_view key) {
        const std::string name = config_token(config, key);
        if (name.empty()) return -1;
        const int id = impl.piece_to_id(name);
        if (id < 0) throw Error("tokenizer_config.json: {} '{}' is not in the vocabulary", key, name);
        return id;
    };
    const auto [prefix, suffix] = template_specials(impl.post_processor.get());
    impl.bos = lookup("bos_token");
    if (impl.bos < 0 && !prefix.empty()) impl.bos = prefix.front();
    impl.eos = lookup("eos_token");
    if (impl.eos < 0 && !suffix.empty()) impl.eos = suffix.back();
    if (impl.eos < 0) {
        for (const char* name : {"</s>", "<|endoftext|>", "<|eos|>", "<|end_of_text|>", "<eos>"}) {
            const auto* a = impl.added->by_content(name);
            if (a && a->special) {
                impl.eos = a->id;
                break;
            }
        }
    }

    const auto add_bos = config.find("add_bos_token"), add_eos = config.find("add_eos_token");
    const bool has_bos_flag = add_bos != config.end() && add_bos->is_boolean();
    const bool has_eos_flag = add_eos != config.end() && add_eos->is_boolean();
    if (!has_bos_flag && !has_eos_flag) return;
    const bool want_bos = has_bos_flag ? add_bos->get<bool>() : !prefix.empty();
    const bool want_eos = has_eos_flag ? add_eos->get<bool>() : !suffix.empty();
    if (want_bos && impl.bos < 0)
        throw Error("tokenizer_config.json: add_bos_token is true but there is no bos_token");
    if (want_eos && impl.eos < 0)
        throw Error("tokenizer_config.json: add_eos_token is true but there is no eos_token");
    impl.post_processor = tok::make_bos_eos_processor(want_bos ? impl.bos : -1, want_eos ? impl.eos : -1);
}

std::unique_ptr<Tokenizer::Impl> build(std::string_view tokenizer_json, std::string_view config_json) {
    const json root = parse_json(tokenizer_json, "the tokenizer");
    if (!root.is_object()) throw Error("expected a JSON object with the tokenizer.json sections");
    const json* model = optional_component(root, "model");
    if (!model) throw Error("no 'model' section (a tokenizer.json needs one)");

    auto impl = std::make_unique<Tokenizer::Impl>();
    try {
        if (const json* n = optional_component(root, "normalizer"))
            impl->normalizer = tok::make_normalizer(*n);
        if (const json* p = optional_component(root, "pre_tokenizer"))
            impl->pre_tokenizer = tok::make_pre_tokenizer(*p);
        impl->model = std::make_unique<tok::BpeModel>(*model);
        const auto added = root.find("added_tokens");
        impl->added = std::make_unique<tok::AddedVocabulary>(added == root.end() ? json(nullptr) : *added,
                                                             *impl->model, impl->normalizer.get());
        if (const json* p = optional_component(root, "post_processor"))
            impl->post_processor = tok::make_post_processor(*p);
        if (const json* d = optional_component(root, "decoder")) impl->decoder = tok::make_decoder(*d);
    } catch (const json::exception& e) {
        throw Error("a field has the wrong type: {}", e.what());
    }

    json config = json::object();
    if (!config_json.empty()) {
        config = parse_json(config_json, "tokenizer_config.json");
        if (!config.is_object()) throw Error("tokenizer_config.json must be a JSON object");
    }
    resolve_special_tokens(*impl, config);
    return impl;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json_text(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                    std::string_view source) {
    try {
        return Tokenizer(build(tokenizer_json, tokenizer_config_json));
    } catch (const Error& e) {
        throw Error("{}: {}", source, e.what());
    }
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json,
                               const std::filesystem::path& tokenizer_config) {
    const std::string text = read_file(tokenizer_json, "tokenizer file");
    const std::string config =
        tokenizer_config.empty() ? std::string() : read_file(tokenizer_config, "tokenizer config");
    std::string source = tokenizer_json.string();
    if (!tokenizer_config.empty()) source += " (with " + tokenizer_config.string() + ")";
    return from_json_text(text, config, source);
}

Tokenizer Tokenizer::from_model_dir(const std::filesystem::path& dir) {
    const auto json_path = dir / "tokenizer.json";
    if (!std::filesystem::is_regular_file(json_path))
        throw Error("{}: no tokenizer.json (expected a Hugging Face model directory)", dir.string());
    const auto config_path = dir / "tokenizer_config.json";
    return from_file(json_path,
                     std::filesystem::is_regular_file(config_path) ? config_path : std::filesystem::path());
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    const size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string_view::npos)
        throw Error(
            "text is not valid UTF-8: invalid or truncated sequence at byte offset {} (byte 0x{:02X})", bad,
            static_cast<unsigned char>(text[bad]));
    std::vector<int> ids;
    ids.reserve(text.size() / 3);
    std::vector<tok::PreSplit> splits;
    for (auto& segment : impl_->added->extract(text, impl_->normalizer.get())) {
        if (segment.token_id >= 0) {
            ids.push_back(segment.token_id);
            continue;
        }
        splits.clear();
        splits.push_back({std::move(segment.text), segment.at_input_start});
        if (impl_->pre_tokenizer) impl_->pre_tokenizer->pre_tokenize(splits);
        for (const auto& s : splits) impl_->model->tokenize(s.text, ids);
    }
    if (add_special_tokens && impl_->post_processor) impl_->post_processor->process(ids);
    return ids;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int id : ids) {
        const std::string* token = nullptr;
        if (const auto* a = impl_->added->by_id(id)) {
            token = &a->decode_form;
        } else {
            token = impl_->model->id_to_token(id);
        }
        if (!token) continue;
        if (skip_special_tokens && impl_->added->is_special_content(*token)) continue;
        tokens.push_back(*token);
    }
    if (!impl_->decoder) {
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (i) out += ' ';
            out += tokens[i];
        }
        return out;
    }
    impl_->decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

std::string Tokenizer::id_to_piece(int id) const {
    if (const auto* a = impl_->added->by_id(id)) return a->content;
    const std::string* t = impl_->model->id_to_token(id);
    return t ? *t : std::string();
}

int Tokenizer::piece_to_id(std::string_view piece) const {
    return impl_->piece_to_id(piece);
}

int Tokenizer::vocab_size() const {
    return std::max(impl_->model->max_id(), impl_->added->max_id()) + 1;
}

int Tokenizer::bos_id() const {
    return impl_->bos;
}

int Tokenizer::eos_id() const {
    return impl_->eos;
}

bool Tokenizer::is_special(int id) const {
    const auto* a = impl_->added->by_id(id);
    return a && a->special;
}

}  // namespace dsa
