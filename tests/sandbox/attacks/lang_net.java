// tries the host's listening port (stdin) on loopback and an outside address: the jail's network
// namespace has only its own loopback
import java.net.*;
import java.util.*;
public class Main {
    public static void main(String[] args) {
        int port = new Scanner(System.in).nextInt();
        String[] hosts = {"127.0.0.1", "1.1.1.1"};
        int[] ports = {port, 53};
        for (int i = 0; i < 2; i++) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(hosts[i], ports[i]), 2000);
                System.out.println("ESCAPED: connected to " + hosts[i]);
            } catch (Exception e) {
                System.out.println(hosts[i] + " refused: " + e);
            }
        }
        System.out.println("done");
    }
}
