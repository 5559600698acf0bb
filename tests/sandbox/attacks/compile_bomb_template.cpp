// template instantiation explosion: the compile step must hit its own limits
template <int N, int M> struct Boom {
    static const long v = Boom<N - 1, M + 1>::v + Boom<N - 1, M + 2>::v + Boom<N - 1, M + 3>::v;
};
template <int M> struct Boom<0, M> { static const long v = M; };
int main() { return (int)Boom<40, 0>::v; }
