/* The x86 vector level the CPU offers.  Read through cpu_level() (_helpers.pxd), which
   caps it by MINIDL_CPU_LEVEL, once per module at import; every kernel family with
   vector variants (direct convolution, Winograd transforms, 2x2 max pool) picks its
   variant from that answer with its own *_select_level(level). */
#ifndef MINIDL_CPU_LEVEL_H
#define MINIDL_CPU_LEVEL_H

enum { MINIDL_CPU_BASELINE = 0, MINIDL_CPU_AVX2 = 1, MINIDL_CPU_AVX512 = 2 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
/* MINIDL_CPU_AVX512: AVX-512 F; MINIDL_CPU_AVX2: AVX2 and FMA. */
static inline int minidl_cpu_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return MINIDL_CPU_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return MINIDL_CPU_AVX2;
    return MINIDL_CPU_BASELINE;
}

/* AVX-512 BW and VL besides F (byte lanes, 128-bit masked loads). */
static inline int minidl_cpu_has_avx512bw_vl(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
#else
static inline int minidl_cpu_level(void) { return MINIDL_CPU_BASELINE; }
static inline int minidl_cpu_has_avx512bw_vl(void) { return 0; }
#endif


/* A function built for each of several instruction sets, the CPU picking one at load
   time (GCC's target_clones); one plain build elsewhere. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MINIDL_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#else
#define MINIDL_CLONES(...)
#endif

#endif
