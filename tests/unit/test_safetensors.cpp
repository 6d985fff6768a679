// safetensors reader: values read back from hand-written files (known IEEE bit patterns), sharded
// directories, and one test per rejected malformation, each asserting the message.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/safetensors.h"
#include "tests/unit/error_of.h"
#include "tests/unit/model_fixture.h"
#include "util/error.h"

namespace dsa {
namespace {

using test::FixtureTensor;
using test::safetensors_file;
using test::safetensors_raw;
using test::TempDir;
using test::write_bytes;

using test::error_of;

std::string open_error(const TempDir& dir, const std::string& bytes) {
    write_bytes(dir / "model.safetensors", bytes);
    return error_of([&] { SafetensorsFile f(dir / "model.safetensors"); });
}

TEST(Safetensors, ReadsAllThreeDtypesWithKnownBitPatterns) {
    TempDir dir;
    // F16: 1, -2, 1/3 rounded (0x3555 = 0.333251953125), max finite 65504, smallest subnormal 2^-24, +inf.
    const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x7C00};
    // BF16: 1, -3, 0x3EAB = 0.333984375, max finite (2 - 2^-7) * 2^127, smallest subnormal 2^-133, -0.
    const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x3EAB, 0x7F7F, 0x0001, 0x8000};
    const std::vector<float> f32 = {1.5f, -0.25f, 3.0e38f, 1.0e-45f};
    write_bytes(dir / "model.safetensors", safetensors_file({{"a.f16", "F16", {2, 3}, test::u16_bytes(f16)},
                                                             {"b.bf16", "BF16", {6}, test::u16_bytes(bf16)},
                                                             {"c.f32", "F32", {2, 2}, test::f32_bytes(f32)}},
                                                            {{"format", "pt"}}));
    SafetensorsFile f(dir / "model.safetensors");
    ASSERT_EQ(f.tensors().size(), 3u);  // __metadata__ is not a tensor

    const TensorView& a = f.tensors().at("a.f16");
    EXPECT_EQ(a.dtype, DType::F16);
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.nbytes, 12u);
    EXPECT_EQ(a.rows(), 2);
    EXPECT_EQ(a.cols(), 3);
    EXPECT_EQ(a.at(0), 1.0f);
    EXPECT_EQ(a.at(1), -2.0f);
    EXPECT_EQ(a.at(2), 0.333251953125f);
    EXPECT_EQ(a.at(3), 65504.0f);
    EXPECT_EQ(a.at(4), std::ldexp(1.0f, -24));
    EXPECT_EQ(a.at(5), std::numeric_limits<float>::infinity());

    const TensorView& b = f.tensors().at("b.bf16");
    EXPECT_EQ(b.dtype, DType::BF16);
    EXPECT_EQ(b.at(0), 1.0f);
    EXPECT_EQ(b.at(1), -3.0f);
    EXPECT_EQ(b.at(2), 0.333984375f);
    EXPECT_EQ(b.at(3), std::ldexp(255.0f, 120));  // 0x7F7F: mantissa 1.1111111b, exponent 127
    EXPECT_EQ(b.at(4), std::ldexp(1.0f, -133));
    EXPECT_EQ(b.at(5), 0.0f);
    EXPECT_TRUE(std::signbit(b.at(5)));

    const TensorView& c = f.tensors().at("c.f32");
    EXPECT_EQ(c.dtype, DType::F32);
    for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(c.at(i), f32[i]);
}

TEST(Safetensors, ViewsPointIntoTheFileWithoutCopying) {
    TempDir dir;
    const std::string bytes = safetensors_file({{"x", "F32", {3}, test::f32_bytes({1, 2, 3})},
                                                {"y", "BF16", {2}, test::u16_bytes({0x4000, 0x4040})}});
    write_bytes(dir / "m.safetensors", bytes);
    SafetensorsFile f(dir / "m.safetensors");
    const TensorView& x = f.tensors().at("x");
    const TensorView& y = f.tensors().at("y");
    EXPECT_EQ(static_cast<const std::byte*>(y.data) - static_cast<const std::byte*>(x.data), 12);
    EXPECT_EQ(y.at(0), 2.0f);
    EXPECT_EQ(y.at(1), 3.0f);
}

TEST(Safetensors, AcceptsEmptyTensorsAndScalars) {
    TempDir dir;
    const std::string err = open_error(
        dir, safetensors_file({{"empty", "F32", {0, 4}, ""}, {"scalar", "F32", {}, test::f32_bytes({7})}}));
    EXPECT_EQ(err, "");
    SafetensorsFile f(dir / "model.safetensors");
    EXPECT_EQ(f.tensors().at("empty").numel(), 0);
    EXPECT_EQ(f.tensors().at("scalar").at(0), 7.0f);
}

TEST(Safetensors, RejectsFileShorterThanTheLengthField) {
    TempDir dir;
    const std::string err = open_error(dir, std::string(5, '\0'));
    EXPECT_NE(err.find("model.safetensors: truncated safetensors file: 5 bytes"), std::string::npos) << err;
}

TEST(Safetensors, RejectsTruncatedDataRegion) {
    TempDir dir;
    std::string bytes = safetensors_file(
        {{"a", "F32", {4}, test::f32_bytes({1, 2, 3, 4})}, {"b", "F32", {4}, test::f32_bytes({5, 6, 7, 8})}});
    bytes.resize(bytes.size() - 6);  // an interrupted download
    const std::string err = open_error(dir, bytes);
    EXPECT_NE(err.find("model.safetensors: truncated file: the header describes 32 data bytes but only 26"),
              std::string::npos)
        << err;
}

TEST(Safetensors, RejectsHeaderLengthPastEndOfFile) {
    TempDir dir;
    const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    const std::string err = open_error(dir, safetensors_raw(header, test::f32_bytes({1}), 1'000'000));
    EXPECT_NE(err.find("header length 1000000 runs past the end of the file"), std::string::npos) << err;
}

TEST(Safetensors, RejectsHeaderThatIsNotJson) {
    TempDir dir;
    const std::string header = R"({"a":{"dtype":"F32",)";
    const std::string err = open_error(dir, safetensors_raw(header, "", header.size()));
    EXPECT_NE(err.find("header is not valid JSON"), std::string::npos) << err;
}

TEST(Safetensors, RejectsOffsetsOutOfRange) {
    TempDir dir;
    const std::string header =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[64,72]}})";
    const std::string err =
        open_error(dir, safetensors_raw(header, test::f32_bytes({1, 2, 3, 4}), header.size()));
    EXPECT_NE(err.find("tensor 'b': data_offsets [64, 72] out of range: the data region is 16 bytes"),
              std::string::npos)
        << err;
}

TEST(Safetensors, RejectsOverlappingTensors) {
    TempDir dir;
    const std::string header =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    const std::string err =
        open_error(dir, safetensors_raw(header, test::f32_bytes({1, 2, 3, 4}), header.size()));
    EXPECT_NE(err.find("tensors 'a' [0, 8] and 'b' [4, 12] overlap"), std::string::npos) << err;
}

TEST(Safetensors, RejectsUnsupportedDtype) {
    TempDir dir;
    const std::string err = open_error(dir, safetensors_file({{"q", "I8", {4}, "abcd"}}));
    EXPECT_NE(err.find("tensor 'q' has dtype I8 (supported: F32, F16, BF16)"), std::string::npos) << err;
}

TEST(Safetensors, RejectsByteSizeThatDoesNotMatchTheShape) {
    TempDir dir;
    const std::string err = open_error(dir, safetensors_file({{"w", "BF16", {2, 3}, std::string(10, '\0')}}));
    EXPECT_NE(
        err.find("tensor 'w': data_offsets [0, 10] span 10 bytes but shape [2, 3] of BF16 needs 12 bytes"),
        std::string::npos)
        << err;
}

TEST(Safetensors, RejectsOffsetsEndingBeforeTheyBegin) {
    TempDir dir;
    const std::string header = R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})";
    const std::string err = open_error(dir, safetensors_raw(header, std::string(8, '\0'), header.size()));
    EXPECT_NE(err.find("data_offsets [8, 4] end before they begin"), std::string::npos) << err;
}

TEST(Safetensors, RejectsMalformedEntries) {
    TempDir dir;
    auto err_for = [&](const std::string& header) {
        return open_error(dir, safetensors_raw(header, std::string(8, '\0'), header.size()));
    };
    EXPECT_NE(
        err_for(R"({"a":{"dtype":"F32","shape":[2]}})").find("needs 'dtype', 'shape' and 'data_offsets'"),
        std::string::npos);
    EXPECT_NE(err_for(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})")
                  .find("shape entries must be non-negative integers"),
              std::string::npos);
    EXPECT_NE(err_for(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})")
                  .find("data_offsets must be [begin, end]"),
              std::string::npos);
    EXPECT_NE(err_for(R"([1,2,3])").find("header must be a JSON object"), std::string::npos);
}

TEST(Safetensors, RejectsMisalignedData) {
    TempDir dir;
    // Header of odd length: the BF16 tensor would start at an odd file offset.
    const std::string header = R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})";
    ASSERT_EQ(header.size() % 2, 1u);
    const std::string err = open_error(dir, safetensors_raw(header, std::string(2, '\0'), header.size()));
    EXPECT_NE(err.find("is not aligned to its 2-byte elements"), std::string::npos) << err;
}

TEST(Safetensors, MissingFileIsAnErrorNamingIt) {
    TempDir dir;
    const std::string err = error_of([&] { SafetensorsFile f(dir / "nope.safetensors"); });
    EXPECT_NE(err.find("nope.safetensors"), std::string::npos) << err;
}

TEST(TensorStore, OpensShardedDirectoryThroughTheIndex) {
    TempDir dir;
    write_bytes(dir / "s1.safetensors", safetensors_file({{"a", "F32", {2}, test::f32_bytes({1, 2})},
                                                          {"b", "F16", {1}, test::u16_bytes({0x4200})}}));
    write_bytes(dir / "s2.safetensors",
                safetensors_file({{"c", "BF16", {2}, test::u16_bytes({0x4080, 0xBF80})}}));
    test::write_json(
        dir / "model.safetensors.index.json",
        {{"metadata", {{"total_size", 14}}},
         {"weight_map", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}}}});
    const TensorStore store = TensorStore::open_dir(dir.path());
    ASSERT_EQ(store.all().size(), 3u);
    EXPECT_EQ(store.get("a").at(1), 2.0f);
    EXPECT_EQ(store.get("b").at(0), 3.0f);
    EXPECT_EQ(store.get("c").at(0), 4.0f);
    EXPECT_EQ(store.get("c").at(1), -1.0f);
    EXPECT_EQ(store.total_bytes(), 14u);
    EXPECT_NE(store.origin("c").find("s2.safetensors"), std::string::npos);
    EXPECT_EQ(store.find("d"), nullptr);
    const std::string err = error_of([&] { store.get("d"); });
    EXPECT_NE(err.find("missing tensor d"), std::string::npos) << err;
}

TEST(TensorStore, IndexOverridesSingleFileAndStoreSurvivesMove) {
    TempDir dir;
    write_bytes(dir / "model.safetensors", safetensors_file({{"a", "F32", {1}, test::f32_bytes({1})}}));
    TensorStore store = TensorStore::open_dir(dir.path());
    const void* before = store.get("a").data;
    TensorStore moved = std::move(store);
    EXPECT_EQ(moved.get("a").data, before);
    EXPECT_EQ(moved.get("a").at(0), 1.0f);
}

TEST(TensorStore, RejectsWeightMapNamingATensorTheShardLacks) {
    TempDir dir;
    write_bytes(dir / "s1.safetensors", safetensors_file({{"a", "F32", {1}, test::f32_bytes({1})}}));
    write_bytes(dir / "s2.safetensors", safetensors_file({{"b", "F32", {1}, test::f32_bytes({2})}}));
    test::write_json(dir / "model.safetensors.index.json",
                     {{"weight_map", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}}}});
    const std::string err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(
        err.find("model.safetensors.index.json: weight_map puts tensor 'b' in 's1.safetensors', but that "
                 "file has no such tensor"),
        std::string::npos)
        << err;
}

TEST(TensorStore, RejectsMissingShardFile) {
    TempDir dir;
    test::write_json(dir / "model.safetensors.index.json", {{"weight_map", {{"a", "gone.safetensors"}}}});
    const std::string err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(err.find("shard 'gone.safetensors' (holding 'a') does not exist"), std::string::npos) << err;
}

TEST(TensorStore, RejectsTensorInTwoShards) {
    TempDir dir;
    write_bytes(dir / "s1.safetensors", safetensors_file({{"a", "F32", {1}, test::f32_bytes({1})}}));
    write_bytes(dir / "s2.safetensors", safetensors_file({{"a", "F32", {1}, test::f32_bytes({2})}}));
    test::write_json(dir / "model.safetensors.index.json",
                     {{"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}}});
    const std::string err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(err.find("tensor 'a' is also in"), std::string::npos) << err;
}

TEST(TensorStore, RejectsMalformedIndex) {
    TempDir dir;
    write_bytes(dir / "model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
    std::string err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(err.find("model.safetensors.index.json: expected an object with a 'weight_map' object"),
              std::string::npos)
        << err;
    write_bytes(dir / "model.safetensors.index.json", "{\"weight_map\": ");
    err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(err.find("model.safetensors.index.json: malformed JSON"), std::string::npos) << err;
}

TEST(TensorStore, RejectsDirectoryWithoutWeights) {
    TempDir dir;
    const std::string err = error_of([&] { TensorStore::open_dir(dir.path()); });
    EXPECT_NE(err.find("no model.safetensors or model.safetensors.index.json"), std::string::npos) << err;
}

TEST(TensorStore, OwnedBuffersAreCheckedAndKeptAlive) {
    TensorStore store;
    std::vector<std::byte> bytes(8);
    const uint16_t one = 0x3F80;  // bf16 1.0
    std::memcpy(bytes.data() + 6, &one, 2);
    store.add_owned("w", DType::BF16, {2, 2}, bytes);
    EXPECT_EQ(store.get("w").at(3), 1.0f);
    EXPECT_EQ(store.origin("w"), "owned buffer");
    const std::string err =
        error_of([&] { store.add_owned("v", DType::F32, {3}, std::vector<std::byte>(8)); });
    EXPECT_NE(err.find("tensor 'v': 8 bytes given, shape [3] of F32 needs 12"), std::string::npos) << err;
}

}  // namespace
}  // namespace dsa
