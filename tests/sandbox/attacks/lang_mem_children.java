// child JVMs each keep 96 MiB (384 MiB against a 64 MiB limit): each is under its own heap
// limit, the jail is not. They start half a second apart: four JVMs starting at once can run out of the
// jail's tasks (pthread_create EAGAIN) before any allocates, and then nothing is tested
import java.util.*;
public class Main {
    public static void main(String[] args) throws Exception {
        if (args.length > 0) {
            byte[] b = new byte[96 << 20]; Arrays.fill(b, (byte) 1);
            Thread.sleep(10000);
            System.out.println(b.length);
            return;
        }
        String java = System.getProperty("java.home") + "/bin/java";
        for (int i = 0; i < 4; i++) {
            new ProcessBuilder(java, "-XX:+UseSerialGC", "-XX:ActiveProcessorCount=1", "-Xmx200m", "-cp", "/work", "Main", "child").inheritIO().start();
            Thread.sleep(500);
        }
        Thread.sleep(4000);
        System.out.println("the parent outlived its children");
    }
}
