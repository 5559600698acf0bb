// sixteen threads each keep 32 MiB (512 MiB against a 64 MiB limit)
import java.util.*;
public class Main {
    public static void main(String[] args) throws Exception {
        List<Thread> ts = new ArrayList<>();
        byte[][] keep = new byte[16][];
        for (int i = 0; i < 16; i++) { final int k = i; Thread t = new Thread(() -> { byte[] b = new byte[32 << 20]; Arrays.fill(b, (byte) 1); keep[k] = b; }); t.start(); ts.add(t); }
        for (Thread t : ts) t.join();
        for (byte[] b : keep) if (b == null) throw new IllegalStateException("a thread did not get its memory");
        System.out.println("ESCAPED: all threads kept their memory " + keep.length);
    }
}
