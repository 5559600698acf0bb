// compile-time computation that would run for hours: the compile step's own time limit stops it
constexpr long spin(long n) {
    long s = 0;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) s += (i ^ j) & 1;
    return s;
}
constexpr long v = spin(200000);
int main() { return (int)(v & 1); }
