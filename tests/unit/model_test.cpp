// core::EndpointMap: copies share endpoints; a change through one copy never shows in another.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/model.hpp"

namespace cnetd::core {
namespace {

Endpoint ep(const std::string& id, const std::string& name) {
    Endpoint e;
    e.id = id;
    e.name = name;
    return e;
}

std::vector<std::string> names(const EndpointMap& m) {
    std::vector<std::string> out;
    for (const auto& [id, e] : m) out.push_back(id + "=" + e.name);
    return out;
}

TEST(EndpointMap, CopiesShareUntilOneChangesAndThenOnlyThatOneChanges) {
    EndpointMap a;
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.begin(), a.end());
    a.put(ep("b", "web"));
    a.put(ep("a", "db"));
    EXPECT_EQ(names(a), (std::vector<std::string>{"a=db", "b=web"}));  // by id

    EndpointMap b = a;  // a snapshot
    EXPECT_TRUE(b.shares_with(a));
    EXPECT_EQ(b.ptr("a"), a.ptr("a"));  // the very same endpoint object

    a.put(ep("a", "db2"));  // replace through a: b keeps the old one
    a.put(ep("c", "cache"));
    EXPECT_FALSE(b.shares_with(a));
    EXPECT_EQ(names(a), (std::vector<std::string>{"a=db2", "b=web", "c=cache"}));
    EXPECT_EQ(names(b), (std::vector<std::string>{"a=db", "b=web"}));
    EXPECT_EQ(b.ptr("b"), a.ptr("b"));  // the untouched endpoint is still shared
    EXPECT_NE(b.ptr("a"), a.ptr("a"));

    EXPECT_TRUE(b.erase("b"));  // erase through the snapshot: a keeps it
    EXPECT_FALSE(b.erase("b"));
    EXPECT_EQ(names(b), (std::vector<std::string>{"a=db"}));
    EXPECT_EQ(a.count("b"), 1u);
    EXPECT_EQ(a.at("b").name, "web");
    EXPECT_THROW((void)b.at("b"), std::out_of_range);
    EXPECT_EQ(b.ptr("b"), nullptr);

    // erase by iterator, found with find and with std::find_if over the pair of references.
    auto it =
        std::find_if(a.begin(), a.end(), [](const auto& kv) { return kv.second.name == "cache"; });
    ASSERT_NE(it, a.end());
    EXPECT_EQ(it->first, "c");
    a.erase(it);
    EXPECT_EQ(a.find("c"), a.end());
    EXPECT_EQ(a.size(), 2u);
    a.clear();
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(names(b), (std::vector<std::string>{"a=db"}));
}

// The worker's pattern: the owner changes its map while readers on other threads iterate copies
// they took earlier. Each snapshot keeps what it saw; in CI's ASan build, a change that reused or
// freed a map a reader still holds is a use-after-free report.
TEST(EndpointMap, OwnerChangesWhileReadersIterateTheirCopies) {
    EndpointMap owner;
    for (int i = 0; i < 100; ++i) owner.put(ep(std::to_string(i), fmt::format("n{}", i)));
    std::vector<EndpointMap> published;
    published.reserve(400);
    std::vector<std::thread> readers;
    for (int round = 0; round < 4; ++round) {
        for (int k = 0; k < 100; ++k) {
            published.push_back(owner);  // a snapshot
            owner.put(ep(std::to_string(k), fmt::format("r{}", round)));
            owner.erase(std::to_string(k + 100));
        }
        const size_t from = published.size() - 100;
        readers.emplace_back([&published, from] {
            for (size_t s = from; s < from + 100; ++s) {
                size_t n = 0;
                for (const auto& [id, e] : published[s]) n += id.size() + e.name.size();
                EXPECT_GT(n, 0u);
            }
        });
    }
    for (auto& t : readers) t.join();
    // Every snapshot still shows exactly what the owner had when it was taken.
    EXPECT_EQ(published[0].at("0").name, "n0");
    EXPECT_EQ(published[1].at("0").name, "r0");
    EXPECT_EQ(published[100].at("0").name, "r0");
    EXPECT_EQ(published[101].at("0").name, "r1");
    EXPECT_EQ(owner.at("99").name, "r3");
}

}  // namespace
}  // namespace cnetd::core
