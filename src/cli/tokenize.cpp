// `dsa tokenize (-m DIR | --tokenizer FILE) (-p TEXT | -f FILE) [--ids] [--no-bos]`: the ids of a text,
// like llama.cpp's llama-tokenize. By default one line per token, `ID -> 'PIECE'` with the piece as
// tokenizer.json stores it (control characters escaped); --ids prints one JSON array of ids.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dsa::cli {

namespace {

struct TokenizeOptions {
    std::string model_dir;
    std::string tokenizer_file;
    std::string prompt;
    std::string prompt_file;
    bool has_prompt = false;  // -p was given (an empty -p "" is an empty text, not a missing one)
    bool ids_only = false;
    bool no_bos = false;
};

std::string read_prompt_file(const std::string& path) {
    if (!std::filesystem::is_regular_file(path)) throw Error("-f {}: no such file", path);
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f && !f.eof()) throw Error("-f {}: cannot read the file", path);
    return ss.str();
}

void check_utf8(const std::string& text, const std::string& flag) {
    const size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string::npos)
        throw Error(
            "{}: text is not valid UTF-8: invalid or truncated sequence at byte offset {} (byte 0x{:02X})",
            flag, bad, static_cast<unsigned char>(text[bad]));
}

// One token per line must stay one line: newlines, tabs and other control bytes are escaped.
void append_escaped(std::string& out, const std::string& piece) {
    for (const char c : piece) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (u < 0x20 || u == 0x7F) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
}

int run_tokenize(const TokenizeOptions& o) {
    if (o.model_dir.empty() == o.tokenizer_file.empty())
        throw Error("tokenize: give exactly one of -m DIR or --tokenizer FILE");
    if (!o.has_prompt && o.prompt_file.empty())
        throw Error("tokenize: give the text with -p TEXT or -f FILE");
    if (!o.model_dir.empty() && !std::filesystem::is_directory(o.model_dir))
        throw Error("-m {}: no such model directory", o.model_dir);
    const Tokenizer tok =
        o.model_dir.empty() ? Tokenizer::from_file(o.tokenizer_file) : Tokenizer::from_model_dir(o.model_dir);
    const std::string text = o.has_prompt ? o.prompt : read_prompt_file(o.prompt_file);
    check_utf8(text, o.has_prompt ? std::string("-p") : "-f " + o.prompt_file);
    const std::vector<int> ids = tok.encode(text, !o.no_bos);

    std::string out;
    if (o.ids_only) {
        out.reserve(ids.size() * 7 + 3);
        out += '[';
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) out += ", ";
            out += std::to_string(ids[i]);
        }
        out += "]\n";
    } else {
        out.reserve(ids.size() * 20);
        for (const int id : ids) {
            out += fmt::format("{:>6} -> '", id);
            append_escaped(out, tok.id_to_piece(id));
            out += "'\n";
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& root, Action& action) {
    auto opts = std::make_shared<TokenizeOptions>();
    CLI::App* cmd = root.add_subcommand("tokenize", "Print the token ids of a text (like llama-tokenize)");
    auto* m = cmd->add_option("-m,--model", opts->model_dir, "Model directory with tokenizer.json");
    auto* t = cmd->add_option("--tokenizer", opts->tokenizer_file, "A tokenizer.json file");
    m->excludes(t);
    auto* p = cmd->add_option("-p,--prompt", opts->prompt, "Text to tokenize");
    auto* f = cmd->add_option("-f,--file", opts->prompt_file, "File whose text to tokenize");
    p->excludes(f);
    cmd->add_flag("--ids", opts->ids_only, "Print only a JSON array of the ids, on one line");
    cmd->add_flag("--no-bos", opts->no_bos,
                  "Do not add the post-processor's special tokens such as BOS (HF add_special_tokens=False)");
    cmd->callback([opts, p, &action] {
        opts->has_prompt = p->count() > 0;
        action = [opts] { return run_tokenize(*opts); };
    });
}

}  // namespace dsa::cli
