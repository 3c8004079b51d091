/*
 * One node of a local SolrCloud cluster (Solr 9.10, the jars of solr/pom.xml), without Solr's
 * tarball:
 *
 *   java -cp "<libdir>/*" CloudLauncher.java <solrHome> <port> <zkHost>
 *       [--zk <zkPort> <zkDataDir>] [--upconfig <confDir> <configName>]
 *
 * (single-file source program: no compile step). The node is Solr's own
 * org.apache.solr.embedded.JettySolrRunner, as for the standalone server (Launcher.java), started
 * in cloud mode: its solr.xml has a <solrcloud> section and the node registers in ZooKeeper at
 * <zkHost> as 127.0.0.1:<port>_solr. Collections are made with Solr's Collections API
 * (scripts/solrcloud.sh).
 *
 * --zk runs the cluster's ZooKeeper in this node's JVM, on 127.0.0.1:<zkPort> with its data in
 * <zkDataDir>: ZooKeeper's own server classes, as Solr's -DzkRun does (one ZooKeeper, no ensemble:
 * a local cluster, not a highly available one). --upconfig puts <confDir> into ZooKeeper as the
 * configset <configName> before the node starts (ZkMaintenanceUtils, as `solr zk upconfig`).
 *
 * Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 if ZooKeeper or Solr failed to start,
 * 2 on bad arguments, 3 if a port is already in use.
 */

import java.io.File;
import java.io.IOException;
import java.lang.reflect.Constructor;
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
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.solr.common.cloud.SolrZkClient;
import org.apache.solr.common.cloud.ZkMaintenanceUtils;
import org.apache.solr.core.CoreContainer;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;
import org.apache.zookeeper.server.ServerCnxnFactory;
import org.apache.zookeeper.server.ZooKeeperServer;

public class CloudLauncher {
  private static final String HOST = "127.0.0.1";
  private static final String CONTEXT = "/solr";
  private static final long CORE_LOAD_WAIT_MS = 180_000L;
  private static final int ZK_TICK_MS = 2000;

  public static void main(String[] args) throws Exception {
    if (args.length < 3) usage();
    Path home = Paths.get(args[0]).toAbsolutePath().normalize();
    final int port = parsePort(args[1]);
    String zkHost = args[2];
    Integer zkPort = null;
    Path zkData = null;
    Path confDir = null;
    String configName = null;
    for (int i = 3; i < args.length; i++) {
      if (args[i].equals("--zk") && i + 2 < args.length) {
        zkPort = parsePort(args[++i]);
        zkData = Paths.get(args[++i]).toAbsolutePath().normalize();
      } else if (args[i].equals("--upconfig") && i + 2 < args.length) {
        confDir = Paths.get(args[++i]).toAbsolutePath().normalize();
        configName = args[++i];
      } else {
        usage();
      }
    }
    if (!Files.isRegularFile(home.resolve("solr.xml"))) fail(2, "no solr.xml in solr home " + home);
    if (confDir != null && !Files.isRegularFile(confDir.resolve("solrconfig.xml"))) {
      fail(2, "no solrconfig.xml in " + confDir);
    }
    if (!portIsFree(port)) fail(3, portBusyMessage(port));
    if (zkPort != null && !portIsFree(zkPort)) fail(3, portBusyMessage(zkPort));

    final ServerCnxnFactory zkFactory = zkPort == null ? null : startZooKeeper(zkPort, zkData);
    if (confDir != null) upconfig(zkHost, confDir, configName);

    // One JVM per node: the node's solr.xml reads these ("${hostPort}", "${zkHost}").
    Properties node = new Properties();
    node.setProperty("hostPort", Integer.toString(port));
    node.setProperty("zkHost", zkHost);
    System.setProperty("solr.solr.home", home.toString());
    System.setProperty("hostPort", Integer.toString(port));
    System.setProperty("zkHost", zkHost);
    JettySolrRunner runner = new JettySolrRunner(home.toString(), node, jettyConfig(port));

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    if (runner.isRunning()) {
                      System.out.println("solrcloud-launcher: stopping the node on port " + port);
                      runner.stop();
                    }
                    if (zkFactory != null) {
                      System.out.println("solrcloud-launcher: stopping ZooKeeper");
                      zkFactory.shutdown();
                    }
                    System.out.println("solrcloud-launcher: stopped");
                  } catch (Throwable t) {
                    System.err.println("solrcloud-launcher: error while stopping: " + describe(t));
                  } finally {
                    stopped.countDown();
                    shutdownLogging();
                  }
                },
                "solrcloud-launcher-shutdown"));

    try {
      runner.start();
    } catch (Throwable e) {
      fail(1, "the Solr node failed to start: " + describe(e) + "\n  (the cause is in the node's log)");
    }
    CoreContainer cc = runner.getCoreContainer();
    if (!runner.isRunning() || cc == null || cc.isShutDown() || !cc.isZooKeeperAware()) {
      fail(1, "the Solr node did not join the cluster at " + zkHost + " (see the node's log)");
    }
    System.out.println(
        "solrcloud-launcher: Solr "
            + org.apache.solr.client.api.util.SolrVersion.LATEST
            + " node " + runner.getNodeName() + " listening on http://" + HOST + ":"
            + runner.getLocalPort() + CONTEXT + " (home " + home + ", ZooKeeper " + zkHost
            + (zkFactory != null ? ", run by this node" : "") + ")");
    System.out.flush();
    stopped.await();
  }

  private static ServerCnxnFactory startZooKeeper(int zkPort, Path dataDir) {
    try {
      File data = dataDir.resolve("data").toFile();
      File log = dataDir.resolve("log").toFile();
      if (!data.isDirectory() && !data.mkdirs()) throw new IOException("cannot create " + data);
      if (!log.isDirectory() && !log.mkdirs()) throw new IOException("cannot create " + log);
      ZooKeeperServer zks = new ZooKeeperServer(data, log, ZK_TICK_MS);
      ServerCnxnFactory factory =
          ServerCnxnFactory.createFactory(new InetSocketAddress(InetAddress.getByName(HOST), zkPort), 200);
      factory.startup(zks);
      System.out.println("solrcloud-launcher: ZooKeeper listening on " + HOST + ":" + zkPort
          + " (data " + dataDir + ")");
      return factory;
    } catch (Throwable e) {
      fail(1, "ZooKeeper failed to start on port " + zkPort + ": " + describe(e));
      return null;
    }
  }

  private static void upconfig(String zkHost, Path confDir, String name) {
    try (SolrZkClient zk =
        new SolrZkClient.Builder()
            .withUrl(zkHost)
            .withTimeout(30_000, TimeUnit.MILLISECONDS)
            .withConnTimeOut(30_000, TimeUnit.MILLISECONDS)
            .build()) {
      ZkMaintenanceUtils.uploadToZK(
          zk, confDir, "/configs/" + name, ZkMaintenanceUtils.UPLOAD_FILENAME_EXCLUDE_PATTERN);
      System.out.println("solrcloud-launcher: configset '" + name + "' uploaded from " + confDir);
    } catch (Throwable e) {
      fail(1, "could not upload the configset '" + name + "' to ZooKeeper at " + zkHost + ": " + describe(e));
    }
  }

  /** As Launcher.java: JettyConfig through its constructor (the Builder loads the test framework). */
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
          && p[6] == java.util.Map.class
          && p[7] == java.util.Map.class
          && p[9] == boolean.class) {
        c.setAccessible(true);
        return (JettyConfig)
            c.newInstance(true, port, 0, CONTEXT, false, CORE_LOAD_WAIT_MS, new TreeMap<>(),
                new LinkedHashMap<>(), null, true);
      }
    }
    fail(1, "unexpected JettyConfig constructors in this Solr version (CloudLauncher.java targets 9.10.x)");
    return null;
  }

  private static void usage() {
    fail(2, "usage: java -cp \"<libdir>/*\" CloudLauncher.java <solrHome> <port> <zkHost>"
        + " [--zk <zkPort> <zkDataDir>] [--upconfig <confDir> <configName>]");
  }

  private static int parsePort(String arg) {
    int port = -1;
    try {
      port = Integer.parseInt(arg);
    } catch (NumberFormatException e) {
      // reported below
    }
    if (port < 1 || port > 65535) fail(2, "invalid port '" + arg + "'");
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
        + " stop it or choose another port (LGDP_SOLRCLOUD_PORT)";
  }

  static String describe(Throwable t) {
    List<String> parts = new ArrayList<>();
    Set<Throwable> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    for (Throwable c = t; c != null && seen.add(c); c = c.getCause()) {
      String msg = c.getMessage() == null ? "" : c.getMessage().trim();
      parts.add(c.getClass().getSimpleName() + (msg.isEmpty() ? "" : ": " + msg));
    }
    return String.join("\n    caused by ", parts);
  }

  private static void shutdownLogging() {
    try {
      org.apache.logging.log4j.LogManager.shutdown();
    } catch (Throwable ignored) {
      // best effort at exit
    }
  }

  private static void fail(int code, String message) {
    System.err.println("solrcloud-launcher: ERROR: " + message);
    System.err.flush();
    System.exit(code);
  }
}
