#include "tokenizer/post_processor.h"

#include <map>
#include <string>

namespace dsa::tok {

namespace {

class TemplateProcessor final : public PostProcessor {
public:
    // One entry per template piece: the special token's ids, or empty with is_sequence for $A.
    struct Part {
        bool is_sequence = false;
        std::vector<int> ids;
    };
    explicit TemplateProcessor(std::vector<Part> parts) : parts_(std::move(parts)) {}

    void process(std::vector<int>& ids) const override {
        std::vector<int> out;
        out.reserve(ids.size() + 4);
        for (const auto& p : parts_) {
            if (p.is_sequence) {
                out.insert(out.end(), ids.begin(), ids.end());
            } else {
                out.insert(out.end(), p.ids.begin(), p.ids.end());
            }
        }
        ids = std::move(out);
    }

private:
    std::vector<Part> parts_;
};

class IdentityProcessor final : public PostProcessor {
public:
    void process(std::vector<int>&) const override {}
};

class SequenceProcessor final : public PostProcessor {
public:
    explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
        : parts_(std::move(parts)) {}
    void process(std::vector<int>& ids) const override {
        for (const auto& p : parts_) p->process(ids);
    }

private:
    std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::unique_ptr<PostProcessor> make_template(const json& spec, std::string_view where) {
    std::map<std::string, std::vector<int>> specials;
    const auto st = spec.find("special_tokens");
    if (st != spec.end() && !st->is_null()) {
        if (!st->is_object()) throw Error("{}: field 'special_tokens' must be an object", where);
        for (const auto& [name, entry] : st->items()) {
            const json& ids = field(entry, "ids", where);
            if (!ids.is_array()) throw Error("{}: special token '{}' needs an 'ids' list", where, name);
            std::vector<int> v;
            for (const auto& id : ids) {
                if (!id.is_number_integer() || id.get<long long>() < 0)
                    throw Error("{}: special token '{}' has an invalid id", where, name);
                v.push_back(id.get<int>());
            }
            specials[name] = std::move(v);
        }
    }
    const json& single = field(spec, "single", where);
    if (!single.is_array()) throw Error("{}: field 'single' must be a list", where);
    std::vector<TemplateProcessor::Part> parts;
    for (const auto& piece : single) {
        if (piece.is_object() && piece.contains("SpecialToken")) {
            const std::string id = string_field(piece["SpecialToken"], "id", where);
            const auto it = specials.find(id);
            if (it == specials.end())
                throw Error("{}: template uses special token '{}' missing from special_tokens", where, id);
            parts.push_back({false, it->second});
        } else if (piece.is_object() && piece.contains("Sequence")) {
            const std::string id = string_field(piece["Sequence"], "id", where);
            if (id != "A")
                throw Error("{}: the single template may only use sequence $A, not ${}", where, id);
            parts.push_back({true, {}});
        } else {
            throw Error("{}: template pieces must be {{\"SpecialToken\": ...}} or {{\"Sequence\": ...}}",
                        where);
        }
    }
    return std::make_unique<TemplateProcessor>(std::move(parts));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& spec) {
    const std::string type = type_of(spec, "post_processor");
    const std::string where = "post_processor " + type;
    if (type == "TemplateProcessing") return make_template(spec, where);
    if (type == "ByteLevel") return std::make_unique<IdentityProcessor>();
    if (type == "Sequence") {
        std::vector<std::unique_ptr<PostProcessor>> parts;
        const json& list = field(spec, "processors", where);
        if (!list.is_array()) throw Error("{}: field 'processors' must be a list", where);
        for (const auto& p : list) parts.push_back(make_post_processor(p));
        return std::make_unique<SequenceProcessor>(std::move(parts));
    }
    throw Error("unsupported post_processor '{}' (supported: TemplateProcessing, ByteLevel, Sequence)", type);
}

std::unique_ptr<PostProcessor> make_bos_eos_processor(int bos_id, int eos_id) {
    std::vector<TemplateProcessor::Part> parts;
    if (bos_id >= 0) parts.push_back({false, {bos_id}});
    parts.push_back({true, {}});
    if (eos_id >= 0) parts.push_back({false, {eos_id}});
    return std::make_unique<TemplateProcessor>(std::move(parts));
}

}  // namespace dsa::tok
