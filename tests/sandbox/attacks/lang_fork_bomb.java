// threads that start threads, and JVMs that start JVMs, without end: the process limit and the
// time limit hold it, and none survives the run
public class Main {
    public static void main(String[] args) throws Exception {
        String java = System.getProperty("java.home") + "/bin/java";
        for (;;) {
            try {
                new ProcessBuilder(java, "-cp", "/work", "Main").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            } catch (Throwable t) {}
            try {
                new Thread(() -> { try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) {} }).start();
            } catch (Throwable t) {}
            Thread.sleep(5);
        }
    }
}
