/*
 * Starts a real Apache Solr 9.10 HTTP server (standalone, no ZooKeeper) from the jars gathered by
 * solr/pom.xml, without Solr's tarball:
 *
 *   java -cp "<libdir>/*" Launcher.java <solrHome> <port>
 *
 * (single-file source program: no compile step). It runs Solr's own
 * org.apache.solr.embedded.JettySolrRunner (solr-test-framework), which mounts Solr's dispatch
 * filter on Jetty 10, bound to 127.0.0.1:<port>, context /solr. The solr home needs a solr.xml;
 * cores are discovered from folders holding a core.properties.
 *
 * Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 if Solr or one of its cores failed to
 * start, 2 on bad arguments, 3 if the port is already in use.
 */

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import org.apache.solr.core.CoreContainer;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

public class Launcher {
  private static final String HOST = "127.0.0.1"; // JettySolrRunner always binds this address
  private static final String CONTEXT = "/solr";
  private static final long CORE_LOAD_WAIT_MS = 180_000L;

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      fail(2, "usage: java -cp \"<libdir>/*\" Launcher.java <solrHome> <port>");
    }
    Path home = Paths.get(args[0]).toAbsolutePath().normalize();
    final int port = parsePort(args[1]);
    if (!Files.isRegularFile(home.resolve("solr.xml"))) {
      fail(2, "no solr.xml in solr home " + home);
    }

    // Fail fast and clearly on a busy port (JettySolrRunner would otherwise retry for 60 s).
    if (!portIsFree(port)) {
      fail(3, portBusyMessage(port));
    }

    System.setProperty("solr.solr.home", home.toString());
    JettySolrRunner runner = new JettySolrRunner(home.toString(), jettyConfig(port));

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    if (runner.isRunning()) {
                      System.out.println("solr-launcher: stopping Solr on port " + port);
                      runner.stop();
                      System.out.println("solr-launcher: Solr stopped");
                    }
                  } catch (Throwable t) {
                    System.err.println("solr-launcher: error while stopping Solr: " + describe(t));
                  } finally {
                    stopped.countDown();
                    shutdownLogging();
                  }
                },
                "solr-launcher-shutdown"));

    try {
      runner.start();
    } catch (Exception e) {
      if (findCause(e, BindException.class) != null) {
        fail(3, portBusyMessage(port));
      }
      fail(1, "Solr (Jetty) failed to start: " + describe(e)
          + "\n  (the cause is in solr.log; check " + home.resolve("solr.xml") + ")");
    }

    CoreContainer cc = runner.getCoreContainer();
    if (!runner.isRunning() || cc == null || cc.isShutDown()) {
      fail(1, "Solr did not start: no core container (bad solr.xml in " + home + "? see solr.log)");
    }

    Map<String, CoreContainer.CoreLoadFailure> failures = cc.getCoreInitFailures();
    if (!failures.isEmpty()) {
      StringBuilder sb = new StringBuilder();
      for (Map.Entry<String, CoreContainer.CoreLoadFailure> f : new TreeMap<>(failures).entrySet()) {
        sb.append("\n  core '").append(f.getKey()).append("' failed to load: ")
            .append(describe(f.getValue().exception));
      }
      fail(1, failures.size() + " Solr core(s) failed to load:" + sb);
    }

    System.out.println(
        "solr-launcher: Solr "
            + org.apache.solr.client.api.util.SolrVersion.LATEST
            + " listening on http://" + HOST + ":" + runner.getLocalPort() + CONTEXT
            + " (home " + home + ", cores " + new java.util.TreeSet<>(cc.getLoadedCoreNames())
            + ")");
    System.out.flush();

    stopped.await(); // until a shutdown hook stops Solr (SIGTERM / SIGINT)
  }

  /**
   * JettyConfig.Builder's constructor reads SolrTestCaseJ4.sslConfig, which would load the whole
   * Lucene/JUnit test framework; build the (immutable) JettyConfig through its constructor instead.
   * Parameters (Solr 9.10): onlyHttp1, port, portRetryTime, context, stopAtShutdown,
   * waitForLoadingCoresToFinishMs, extraServlets, extraFilters, sslConfig, enableV2.
   */
  private static JettyConfig jettyConfig(int port) throws Exception {
    for (Constructor<?> c : JettyConfig.class.getDeclaredConstructors()) {
      Class<?>[] p = c.getParameterTypes();
      if (p.length == 10
          && p[0] == boolean.class
          && p[1] == int.class
          && p[2] == int.class
          && p[3] == String.class
          && p[4] == boolean.class
          && p[5] == Long.class
          && p[6] == Map.class
          && p[7] == Map.class
          && p[9] == boolean.class) {
        c.setAccessible(true);
        return (JettyConfig)
            c.newInstance(
                true, // HTTP/1.1 only
                port,
                0, // no retry on a busy port
                CONTEXT,
                false, // Jetty's own stop-at-shutdown hook off: ours stops Solr
                CORE_LOAD_WAIT_MS,
                new TreeMap<>(),
                new LinkedHashMap<>(),
                null, // no SSL
                true); // V2 API as in a normal Solr
      }
    }
    fail(1, "unexpected JettyConfig constructors in this Solr version (Launcher.java targets 9.10.x)");
    return null;
  }

  private static int parsePort(String arg) {
    int port = -1;
    try {
      port = Integer.parseInt(arg);
    } catch (NumberFormatException e) {
      // reported below
    }
    if (port < 1 || port > 65535) {
      fail(2, "invalid port '" + arg + "'");
    }
    return port;
  }

  private static boolean portIsFree(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static String portBusyMessage(int port) {
    return "port " + port + " on " + HOST + " is already in use by another process;"
        + " stop it or choose another port";
  }

  /** The chain of causes, one "Type: message" per distinct cause. */
  static String describe(Throwable t) {
    List<String> parts = new ArrayList<>();
    Set<Throwable> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    String last = null;
    for (Throwable c = t; c != null && seen.add(c); c = c.getCause()) {
      String msg = c.getMessage() == null ? "" : c.getMessage().trim();
      if (last != null && !msg.isEmpty() && last.contains(msg)) {
        continue; // wrapper messages often repeat the cause's message
      }
      parts.add(c.getClass().getSimpleName() + (msg.isEmpty() ? "" : ": " + msg));
      if (!msg.isEmpty()) last = msg;
    }
    return String.join("\n    caused by ", parts);
  }

  private static Throwable findCause(Throwable t, Class<? extends Throwable> type) {
    Set<Throwable> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    for (Throwable c = t; c != null && seen.add(c); c = c.getCause()) {
      if (type.isInstance(c)) return c;
      for (Throwable s : c.getSuppressed()) {
        if (type.isInstance(s)) return s;
      }
    }
    return null;
  }

  private static void shutdownLogging() {
    try {
      org.apache.logging.log4j.LogManager.shutdown();
    } catch (Throwable ignored) {
      // logging is best effort at exit
    }
  }

  private static void fail(int code, String message) {
    System.err.println("solr-launcher: ERROR: " + message);
    System.err.flush();
    System.exit(code); // runs the shutdown hook (stops Jetty if it is running)
  }
}
