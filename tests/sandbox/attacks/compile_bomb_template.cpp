// template explosion: each level inherits its predecessor twice (through two wrappers), so the
// class has 2^28 base subobjects and the compiler's layout checks run for hours; the compile step's
// own time limit stops it
template <int N> struct Node;
template <int N, int K> struct Wrap : Node<N> {};
template <int N> struct Node : Wrap<N - 1, 0>, Wrap<N - 1, 1> {};
template <> struct Node<0> {};
int main() {
    Node<28> n;
    return (int)sizeof(n);
}
