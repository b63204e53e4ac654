// HikariBench: HikariCP's side of scripts/bench.sh, on the same throwaway
// PostgreSQL as poolscope's cases, printing one JSON object per run with the
// fields poolscope-contention and poolscope-load print.
//
//   contention  N threads loop getConnection() / close() on a pool of 8 warm
//               connections (minimumIdle = maximumPoolSize), after a JIT
//               warm-up of the same loop: ns per cycle over all threads, the
//               getConnection() latency distribution (p50 / p99 / max) and
//               fairness (fewest / most cycles of any thread).
//   widget      poolscope-load's widget render (20 open transactions, an
//               account per row reading api_key, api_secret, paper_account)
//               with a connection per settings read, the query a
//               PreparedStatement as users write it (pgjdbc switches it to a
//               server-side prepared statement after prepareThreshold = 5
//               uses on a connection, its default).
//
// Built and run by scripts/bench.sh with plain javac / java (Debian's
// libhikaricp-java, libpostgresql-jdbc-java, libslf4j-java):
//   java -cp ... HikariBench contention --threads 16 --pool 8 --seconds 2 --warmup 10
//   java -cp ... HikariBench widget --threads 8 --pool 8 --seconds 5 --warmup 10
// The server comes from the environment, never the command line (ps shows
// it): PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD.

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

public final class HikariBench {
  // Latencies in buckets 2^(k/4) ns, as poolscope-contention counts them:
  // 25% resolution from 1 ns to about an hour.
  static final class Histogram {
    static final int BUCKETS = 4 * 42;
    final long[] counts = new long[BUCKETS];
    long max = 0;

    void add(long ns) {
      if (ns > max) max = ns;
      int b = ns <= 0 ? 0 : Math.min(BUCKETS - 1, (int) (4.0 * Math.log(ns) / Math.log(2)) + 1);
      counts[b]++;
    }

    void merge(Histogram o) {
      for (int i = 0; i < BUCKETS; i++) counts[i] += o.counts[i];
      max = Math.max(max, o.max);
    }

    void clear() {
      java.util.Arrays.fill(counts, 0);
      max = 0;
    }

    double quantile(double q) {
      long total = 0;
      for (long c : counts) total += c;
      long rank = (long) (q * total);
      long seen = 0;
      for (int i = 0; i < BUCKETS; i++) {
        seen += counts[i];
        if (seen > rank) return i == 0 ? 0.0 : Math.pow(2.0, i / 4.0);
      }
      return max;
    }
  }

  // One worker's figures; padded apart so workers do not share a cache line.
  static final class PerThread {
    long p0, p1, p2, p3, p4, p5, p6;
    long cycles;
    final Histogram waits = new Histogram();
    final Histogram renders = new Histogram();
    long q0, q1, q2, q3, q4, q5, q6;

    void clear() {
      cycles = 0;
      waits.clear();
      renders.clear();
    }
  }

  interface Body {
    // One cycle (a checkout, or a render); records into mine.
    void run(PerThread mine) throws Exception;
  }

  static Map<String, String> options(String[] args) {
    Map<String, String> o = new HashMap<>();
    o.put("threads", "16");
    o.put("pool", "8");
    o.put("seconds", "2");
    o.put("warmup", "10");
    for (int i = 1; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) throw new IllegalArgumentException("bad option " + args[i]);
      o.put(args[i].substring(2), args[i + 1]);
    }
    return o;
  }

  static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? fallback : v;
  }

  static HikariDataSource pool(int size) throws InterruptedException {
    HikariConfig c = new HikariConfig();
    c.setJdbcUrl("jdbc:postgresql://" + env("PGHOST", "127.0.0.1") + ":" + env("PGPORT", "5432")
        + "/" + env("PGDATABASE", "postgres"));
    c.setUsername(env("PGUSER", "postgres"));
    c.setPassword(env("PGPASSWORD", ""));
    c.setMaximumPoolSize(size);
    c.setMinimumIdle(size);
    c.setPoolName("bench");
    HikariDataSource ds = new HikariDataSource(c);
    // Warm: every connection open before the clock starts.
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (ds.getHikariPoolMXBean().getIdleConnections() < size) {
      if (System.nanoTime() > deadline) throw new IllegalStateException("pool did not fill");
      Thread.sleep(10);
    }
    return ds;
  }

  // Runs body on threads workers for warmup seconds (results dropped), then
  // for seconds, and returns each worker's figures for the measured part.
  static PerThread[] run(int threads, double warmup, double seconds, Body body)
      throws InterruptedException {
    PerThread[] out = new PerThread[threads];
    for (int t = 0; t < threads; t++) out[t] = new PerThread();
    AtomicBoolean stop = new AtomicBoolean(false);
    // Workers check this between cycles; the main thread flips it once the
    // warm-up is over, and each worker clears its own figures then.
    AtomicBoolean measuring = new AtomicBoolean(false);
    CountDownLatch ready = new CountDownLatch(threads);
    CountDownLatch go = new CountDownLatch(1);
    List<Thread> workers = new ArrayList<>();
    Throwable[] failure = new Throwable[1];
    for (int t = 0; t < threads; t++) {
      final PerThread mine = out[t];
      Thread w = new Thread(() -> {
        try {
          ready.countDown();
          go.await();
          boolean cleared = warmup <= 0;
          while (!stop.get()) {
            if (!cleared && measuring.get()) {
              mine.clear();
              cleared = true;
            }
            body.run(mine);
          }
        } catch (Throwable e) {
          synchronized (failure) {
            if (failure[0] == null) failure[0] = e;
          }
          stop.set(true);
        }
      });
      workers.add(w);
      w.start();
    }
    ready.await();
    go.countDown();
    if (warmup > 0) Thread.sleep((long) (warmup * 1000));
    measuring.set(true);
    Thread.sleep((long) (seconds * 1000));
    stop.set(true);
    for (Thread w : workers) w.join();
    if (failure[0] != null) throw new RuntimeException("worker failed", failure[0]);
    return out;
  }

  static void contention(Map<String, String> o) throws Exception {
    int threads = Integer.parseInt(o.get("threads"));
    int size = Integer.parseInt(o.get("pool"));
    double seconds = Double.parseDouble(o.get("seconds"));
    double warmup = Double.parseDouble(o.get("warmup"));
    try (HikariDataSource ds = pool(size)) {
      PerThread[] results = run(threads, warmup, seconds, mine -> {
        long start = System.nanoTime();
        try (Connection c = ds.getConnection()) {
          mine.waits.add(System.nanoTime() - start);
        }
        mine.cycles++;
      });
      Histogram all = new Histogram();
      long total = 0, fewest = Long.MAX_VALUE, most = 0;
      for (PerThread t : results) {
        all.merge(t.waits);
        total += t.cycles;
        fewest = Math.min(fewest, t.cycles);
        most = Math.max(most, t.cycles);
      }
      System.out.println(String.format(Locale.ROOT,
          "{\"impl\": \"hikaricp\", \"db\": \"postgresql\", \"threads\": %d, \"pool\": %d, "
              + "\"seconds\": %.2f, \"warmup_s\": %.1f, \"cycles\": %d, \"ns_per_cycle\": %.1f, "
              + "\"wait_p50_ns\": %.0f, \"wait_p99_ns\": %.0f, \"wait_max_ns\": %d, "
              + "\"fairness\": %.3f}",
          threads, size, seconds, warmup, total, seconds * 1e9 / Math.max(total, 1),
          all.quantile(0.5), all.quantile(0.99), all.max,
          most == 0 ? 0.0 : (double) fewest / most));
    }
  }

  static final String SETTING_QUERY =
      "SELECT setting_value FROM account_settings WHERE account_id = ? AND setting_key = ?";
  static final String[] KEYS = {"api_key", "api_secret", "paper_account"};

  // The widget's input, read once: the open transactions' accounts, in order.
  static int[] openAccounts(HikariDataSource ds) throws SQLException {
    List<Integer> ids = new ArrayList<>();
    try (Connection c = ds.getConnection();
         PreparedStatement ps = c.prepareStatement(
             "SELECT account_id FROM transactions WHERE status = 'OPEN' ORDER BY id");
         ResultSet rs = ps.executeQuery()) {
      while (rs.next()) ids.add(rs.getInt(1));
    }
    if (ids.isEmpty()) throw new IllegalStateException("no open transactions: seed first");
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  // One settings read on a connection of its own, as the account's
  // constructor does it.
  static String read(HikariDataSource ds, PerThread mine, int account, String key)
      throws SQLException {
    long start = System.nanoTime();
    try (Connection c = ds.getConnection()) {
      mine.waits.add(System.nanoTime() - start);
      try (PreparedStatement ps = c.prepareStatement(SETTING_QUERY)) {
        ps.setInt(1, account);
        ps.setString(2, key);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            throw new IllegalStateException("account " + account + " has no setting " + key);
          }
          return rs.getString(1);
        }
      }
    }
  }

  static void widget(Map<String, String> o) throws Exception {
    int threads = Integer.parseInt(o.get("threads"));
    int size = Integer.parseInt(o.get("pool"));
    double seconds = Double.parseDouble(o.get("seconds"));
    double warmup = Double.parseDouble(o.get("warmup"));
    try (HikariDataSource ds = pool(size)) {
      final int[] accounts = openAccounts(ds);
      PerThread[] results = run(threads, warmup, seconds, mine -> {
        long start = System.nanoTime();
        int paper = 0;
        for (int account : accounts) {
          String apiKey = read(ds, mine, account, KEYS[0]);
          String apiSecret = read(ds, mine, account, KEYS[1]);
          if (read(ds, mine, account, KEYS[2]).equals("true")) paper++;
          if (apiKey.isEmpty() || apiSecret.isEmpty()) throw new IllegalStateException("empty");
        }
        if (paper > accounts.length) throw new IllegalStateException("unreachable");
        mine.renders.add(System.nanoTime() - start);
        mine.cycles++;
      });
      Histogram waits = new Histogram(), renders = new Histogram();
      long total = 0;
      for (PerThread t : results) {
        waits.merge(t.waits);
        renders.merge(t.renders);
        total += t.cycles;
      }
      System.out.println(String.format(Locale.ROOT,
          "{\"impl\": \"hikaricp\", \"mode\": \"connection-per-read\", \"threads\": %d, "
              + "\"pool_size\": %d, \"duration_s\": %.2f, \"warmup_s\": %.1f, \"renders\": %d, "
              + "\"renders_per_s\": %.2f, \"settings_reads_per_render\": %d, "
              + "\"render_latency_p50_s\": %.6g, \"render_latency_p99_s\": %.6g, "
              + "\"acquire_p50_s\": %.6g, \"acquire_p99_s\": %.6g}",
          threads, size, seconds, warmup, total, total / seconds, accounts.length * 3,
          renders.quantile(0.5) * 1e-9, renders.quantile(0.99) * 1e-9,
          waits.quantile(0.5) * 1e-9, waits.quantile(0.99) * 1e-9));
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 1) {
      System.err.println("usage: HikariBench contention|widget [--threads N] [--pool N] "
          + "[--seconds S] [--warmup S]");
      System.exit(2);
    }
    Map<String, String> o = options(args);
    switch (args[0]) {
      case "contention":
        contention(o);
        break;
      case "widget":
        widget(o);
        break;
      default:
        System.err.println("HikariBench: unknown case " + args[0]);
        System.exit(2);
    }
  }
}
