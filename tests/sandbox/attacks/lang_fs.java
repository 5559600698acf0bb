// reads the host's secret (its directory on stdin) and writes outside /work: everything but
// /work is read-only, and the host's files are not there
import java.nio.file.*;
import java.util.*;
public class Main {
    public static void main(String[] args) throws Exception {
        String dir = new Scanner(System.in).next();
        try { System.out.println("read: " + Files.readString(Path.of(dir, "secret.txt"))); } catch (Exception e) { System.out.println("no secret: " + e); }
        for (String p : new String[] {"/etc/written_by_sandbox", "/usr/written_by_sandbox", "/written_by_sandbox", dir + "/written_by_sandbox", "/proc/written_by_sandbox"}) {
            try { Files.writeString(Path.of(p), "x"); System.out.println("ESCAPED: wrote " + p); } catch (Exception e) { System.out.println("cannot write " + e); }
        }
        Files.writeString(Path.of("/work/ok.txt"), "x");
        Files.writeString(Path.of("/tmp/written_by_sandbox"), "x");
        System.out.println("done");
    }
}
