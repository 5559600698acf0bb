// burns CPU forever in several threads: the time limit must stop it
public class Main {
    static volatile long sink;
    public static void main(String[] args) throws Exception {
        for (int i = 0; i < 4; i++) new Thread(() -> { long x = 0; for (;;) { x = (x * 31 + 7) % 1000003; sink = x; } }).start();
        Thread.sleep(Long.MAX_VALUE);
    }
}
