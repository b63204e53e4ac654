// ShardTable: the hash table of a TtlCache shard. Separate chaining into a
// power-of-two array of buckets indexed by the top bits of a key's (already
// mixed) hash; nodes are linked through their own `chain` pointer, so a node
// never moves, a hit follows one pointer from its bucket, and no division
// picks the bucket. The array doubles once there are more nodes than
// buckets. Nodes carry their key's hash, compared before the key.
//
// REQUIRES of Node: members `std::size_t hash` and `Node* chain`.
//
// Not synchronized: the shard's lock guards it (shared for find() and the
// scans, exclusive for everything that changes it).

#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

namespace poolscope::cache::detail {

template <class Node>
class ShardTable {
 public:
  ShardTable() : buckets_(new Node*[kInitialBuckets]()), shift_(64 - kInitialBits) {}
  ~ShardTable() { clear(); }
  ShardTable(const ShardTable&) = delete;
  ShardTable& operator=(const ShardTable&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t bucket_count() const noexcept { return std::size_t{1} << (64 - shift_); }

  // The node with this hash for which is_key(node) holds, or null.
  template <class IsKey>
  Node* find(std::size_t hash, IsKey&& is_key) const {
    for (Node* n = buckets_[hash >> shift_]; n != nullptr; n = n->chain) {
      if (n->hash == hash && is_key(*n)) return n;
    }
    return nullptr;
  }

  // Takes n. REQUIRES: no node of the table has an equal key. Throws
  // std::bad_alloc (growing), leaving the table unchanged and n destroyed.
  void insert(std::unique_ptr<Node> n) {
    if (size_ >= bucket_count()) grow();
    Node*& head = buckets_[n->hash >> shift_];
    n->chain = head;
    head = n.release();
    ++size_;
  }

  // Unlinks n (REQUIRES: a node of this table) and hands it back.
  std::unique_ptr<Node> extract(Node& n) noexcept {
    for (Node** link = &buckets_[n.hash >> shift_]; *link != nullptr; link = &(*link)->chain) {
      if (*link == &n) {
        *link = n.chain;
        n.chain = nullptr;
        --size_;
        break;
      }
    }
    return std::unique_ptr<Node>(&n);
  }

  // Calls f(Node&) for every node of buckets [first, last); f may not
  // change the table. Returns min(last, bucket_count()).
  template <class F>
  std::size_t for_each_in(std::size_t first, std::size_t last, F&& f) const {
    last = std::min(last, bucket_count());
    for (std::size_t b = first; b < last; ++b) {
      for (Node* n = buckets_[b]; n != nullptr; n = n->chain) f(*n);
    }
    return last;
  }
  template <class F>
  void for_each(F&& f) const {
    for_each_in(0, bucket_count(), f);
  }

  // Exchanges the contents of the two tables.
  void swap(ShardTable& other) noexcept {
    std::swap(buckets_, other.buckets_);
    std::swap(shift_, other.shift_);
    std::swap(size_, other.size_);
  }

  // Destroys every node.
  void clear() noexcept {
    for (std::size_t b = 0; b < bucket_count(); ++b) {
      for (Node* n = std::exchange(buckets_[b], nullptr); n != nullptr;) {
        delete std::exchange(n, n->chain);
      }
    }
    size_ = 0;
  }

 private:
  static constexpr int kInitialBits = 3;
  static constexpr std::size_t kInitialBuckets = std::size_t{1} << kInitialBits;

  void grow() {
    const std::size_t old_count = bucket_count();
    std::unique_ptr<Node*[]> bigger(new Node*[old_count * 2]());
    const int shift = shift_ - 1;
    for (std::size_t b = 0; b < old_count; ++b) {
      for (Node* n = buckets_[b]; n != nullptr;) {
        Node* next = n->chain;
        Node*& head = bigger[n->hash >> shift];
        n->chain = head;
        head = n;
        n = next;
      }
    }
    buckets_ = std::move(bigger);
    shift_ = shift;
  }

  std::unique_ptr<Node*[]> buckets_;
  int shift_;  // 64 - log2(buckets)
  std::size_t size_ = 0;
};

}  // namespace poolscope::cache::detail
