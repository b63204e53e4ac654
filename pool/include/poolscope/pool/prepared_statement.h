// PreparedStatement: a statement prepared once per physical connection and
// reused by every later lease of that connection, the way pgjdbc switches a
// hot query to a server-side prepared statement: the server parses and plans
// it once, not on every read.
//
//   std::string value;
//   bool found = lease.prepared("select setting_value from account_settings"
//                               " where account_id = :a and setting_key = :k")
//                    .execute(soci::use(account), soci::use(key), soci::into(value));
//
// Statements belong to the connection: a bounded LRU per connection
// (PoolConfig::statement_cache_size), dropped with the connection. Behind a
// transaction-pooling proxy (PoolConfig::transaction_pooler) or with a cache
// size of 0, nothing is prepared on the server and every execute() is a
// one-time query, so a statement never goes to a session it was not made on.
// If the server forgot a statement all the same ("prepared statement ... does
// not exist": DISCARD ALL, a proxy switching sessions), execute() prepares it
// again and retries once, outside a transaction; inside one it throws an
// Error that names the cause and the setting.
//
// A statement whose elements are all scalars SOCI exchanges as they are
// (numbers, std::string, std::tm, each with or without one indicator) is
// bound once, to values of its own: each execute() copies the caller's
// use() values in and each fetched row out to the caller's into() targets,
// rather than binding the caller's variables anew (SOCI allocates an
// exchange object per element and a backend one per bind, every time).
// What the caller sees is the same either way: a NULL sets the indicator
// and leaves the value, a query that finds no row leaves both. Other
// elements (vectors, rows, user types) are bound on every execute().
//
// Obtained from Lease::prepared(); valid while that lease is held. Not
// thread-safe: one thread at a time, as the lease.

#pragma once

#include <soci/soci.h>

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace poolscope {

namespace detail {
class Connection;
class StatementCache;

// The scalars SOCI exchanges as they are (exchange_traits' basic types).
template <class T, class... Of>
inline constexpr bool kOneOf = (std::is_same_v<T, Of> || ...);
template <class T>
inline constexpr bool kCopyExchanged =
    kOneOf<T, char, short, unsigned short, int, unsigned int, long, unsigned long, long long,
           unsigned long long, double, std::string, std::tm>;
template <class I>
inline constexpr bool kScalarIndicator = kOneOf<I, soci::details::no_indicator, soci::indicator>;

// Whether an element of execute() can be bound once, to a copy.
template <class E>
inline constexpr bool kCopyBound = false;
template <class T, class I>
inline constexpr bool kCopyBound<soci::details::use_container<T, I>> =
    kCopyExchanged<std::remove_const_t<T>> && kScalarIndicator<I>;
template <class T, class I>
inline constexpr bool kCopyBound<soci::details::into_container<T, I>> =
    kCopyExchanged<T> && kScalarIndicator<I>;

// One element's copy, which the statement stays bound to.
template <class E>
class BoundCopy;

template <class T, class I>
class BoundCopy<soci::details::use_container<T, I>> {
 public:
  using Element = soci::details::use_container<T, I>;
  explicit BoundCopy(const Element& e) : name_(e.name) {}
  void bind(soci::statement& st) {
    if constexpr (kIndicated) {
      st.exchange(soci::use(std::as_const(value_), ind_, name_));
    } else {
      st.exchange(soci::use(std::as_const(value_), name_));
    }
  }
  void copy_in(const Element& e) {
    value_ = e.t;
    if constexpr (kIndicated) ind_ = e.ind;
  }
  void copy_out() noexcept {}

 private:
  static constexpr bool kIndicated = std::is_same_v<I, soci::indicator>;
  std::remove_const_t<T> value_{};
  soci::indicator ind_ = soci::i_ok;
  const std::string name_;
};

template <class T, class I>
class BoundCopy<soci::details::into_container<T, I>> {
 public:
  using Element = soci::details::into_container<T, I>;
  explicit BoundCopy(const Element&) {}
  void bind(soci::statement& st) {
    if constexpr (kIndicated) {
      st.exchange(soci::into(value_, ind_));
    } else {
      st.exchange(soci::into(value_));
    }
  }
  // Only notes where the row goes: the caller's variables are written
  // when one is fetched.
  void copy_in(const Element& e) noexcept {
    target_ = &e.t;
    if constexpr (kIndicated) target_ind_ = &e.ind;
  }
  void copy_out() {
    if constexpr (kIndicated) {
      *target_ind_ = ind_;
      if (ind_ == soci::i_null) return;  // SOCI leaves the value of a NULL alone
    }
    *target_ = value_;
  }

 private:
  static constexpr bool kIndicated = std::is_same_v<I, soci::indicator>;
  T value_{};
  soci::indicator ind_ = soci::i_ok;
  T* target_ = nullptr;
  soci::indicator* target_ind_ = nullptr;
};

class BindingBase {
 public:
  virtual ~BindingBase() = default;
  virtual void copy_out() = 0;
};

// The copies of one shape of execute() (its element types, in order).
template <class... Elements>
class Binding final : public BindingBase {
 public:
  explicit Binding(const Elements&... elements) : copies_(elements...) {}
  void bind(soci::statement& st) {
    std::apply([&st](auto&... c) { (c.bind(st), ...); }, copies_);
  }
  void copy_in(const Elements&... elements) {
    std::apply([&](auto&... c) { (c.copy_in(elements), ...); }, copies_);
  }
  void copy_out() override {
    std::apply([](auto&... c) { (c.copy_out(), ...); }, copies_);
  }

 private:
  std::tuple<BoundCopy<Elements>...> copies_;
};

}  // namespace detail

class PreparedStatement {
 public:
  // Binds elements (soci::use() and soci::into() results), executes, and
  // fetches the first row into the into elements. Returns true when a row
  // was fetched. Throws what SOCI throws, or Error (see above).
  template <class... Elements>
  bool execute(const Elements&... elements);

  // Fetches the next row into the into elements of the last execute().
  bool fetch();

  const std::string& sql() const noexcept { return sql_; }

  PreparedStatement(const PreparedStatement&) = delete;
  PreparedStatement& operator=(const PreparedStatement&) = delete;

 private:
  friend class detail::StatementCache;
  PreparedStatement(detail::Connection& connection, std::string sql, bool one_time);

  // The statement, ready for exchange(): prepared once, or a fresh one-time
  // statement.
  soci::statement& begin();
  bool finish();
  // The statement prepared once on this connection (counted as prepared or
  // as a hit), bound to copies of elements' shape.
  template <class... Elements>
  bool execute_bound(const Elements&... elements);
  soci::statement& prepared();
  // Forgets what the statement was bound to (SOCI's objects first: they
  // point into binding_).
  void unbind();
  // After a failure: true when the statement was lost on the server and may
  // be prepared again; otherwise throws (e itself, or a clearer Error).
  bool recover(const soci::soci_error& e, int attempt);

  detail::Connection& connection_;
  const std::string sql_;
  const bool one_time_;
  // Declared before statement_, so it outlives the statement bound to it.
  std::unique_ptr<detail::BindingBase> binding_;
  std::optional<soci::statement> statement_;
};

template <class... Elements>
bool PreparedStatement::execute(const Elements&... elements) {
  if constexpr ((detail::kCopyBound<Elements> && ...)) {
    if (!one_time_) return execute_bound(elements...);
  }
  for (int attempt = 0;; ++attempt) {
    try {
      soci::statement& st = begin();
      (st.exchange(elements), ...);
      return finish();
    } catch (const soci::soci_error& e) {
      if (!recover(e, attempt)) throw;
    }
  }
}

template <class... Elements>
bool PreparedStatement::execute_bound(const Elements&... elements) {
  using Bound = detail::Binding<Elements...>;
  for (int attempt = 0;; ++attempt) {
    try {
      soci::statement& st = prepared();
      detail::BindingBase* current = binding_.get();
      Bound* bound = nullptr;
      if (current != nullptr && typeid(*current) == typeid(Bound)) {
        bound = static_cast<Bound*>(current);
      } else {
        unbind();
        auto fresh = std::make_unique<Bound>(elements...);
        bound = fresh.get();
        binding_ = std::move(fresh);  // first: on a throw below, unbind() finds it
        bound->bind(st);
        st.define_and_bind();
      }
      bound->copy_in(elements...);
      if (!st.execute(true)) return false;
      bound->copy_out();
      return true;
    } catch (const soci::soci_error& e) {
      unbind();  // a failed execute leaves SOCI's buffers half used: bind afresh
      if (!recover(e, attempt)) throw;
    } catch (...) {
      unbind();
      throw;
    }
  }
}

}  // namespace poolscope
