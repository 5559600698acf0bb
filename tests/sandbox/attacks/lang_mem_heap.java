// allocates and touches 2 GiB past the 64 MiB limit: MemoryLimitExceeded
import java.util.*;
public class Main {
    public static void main(String[] args) {
        List<byte[]> keep = new ArrayList<>();
        for (int i = 0; i < 128; i++) { byte[] b = new byte[16 << 20]; Arrays.fill(b, (byte) 1); keep.add(b); }
        System.out.println("ESCAPED: kept " + keep.size() * 16 + " MiB");
    }
}
