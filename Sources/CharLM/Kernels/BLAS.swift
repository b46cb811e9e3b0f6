// The only file that talks to BLAS: OpenBLAS's C interface on Linux, Accelerate on macOS. Every matrix product in
// CharLM that BLAS computes goes through `BLAS.gemm` or `BLAS.gemv`, always on row-major float32 matrices; the others
// run on charlm's own packed kernel (PackedProduct.swift; Products.swift picks between the two for the large ones).

#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
import Glibc
#endif

/// Whether a matrix operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    fileprivate var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Row-major single-precision BLAS.
///
/// BLAS itself runs on one thread: the products big enough to share are split over the threads of the caller's
/// `ComputeContext` (by rows of the result, or by columns when it has fewer rows than columns), each thread calling
/// BLAS on its part. One set of threads then does all of charlm's work: OpenBLAS's own threads, when they had any,
/// kept spinning between products and took a quarter of a core from the recurrent layers' time loops (measured with
/// perf while training the LSTM, size M).
public enum BLAS {
    /// The most rows of C one BLAS call computes: a thread's share of rows goes to BLAS in parts of at most this many.
    ///
    /// OpenBLAS sees a row-major product as the column-major C^T = op(B)^T op(A)^T and packs the rows of op(A) (its
    /// second operand there) whole, min(k, its depth block) floats for each row, before multiplying: 3.3 MB a thread
    /// for training M's forward product (3,200 rows a thread, k = 256), most of what OpenBLAS added to training's
    /// peak memory. Parts of 1,024 rows keep that under 1 MB a thread and ran as fast (docs/benchmarks.md, the eighth
    /// session's section). Results are the same as one call's up to float32 rounding.
    static let rowsPerCall = 1024

    /// C = alpha * op(A) * op(B) + beta * C, where op(A) is (m, k), op(B) is (k, n) and C is (m, n).
    ///
    /// Leading dimensions are row strides in elements: `lda` is the stored row length of A (k when A is used as
    /// stored, m when transposed), and likewise `ldb`, `ldc`. They let callers multiply sub-blocks of larger buffers.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, context: ComputeContext
    ) {
        if m == 0 || n == 0 { return }
        context.productTeam.runParts(work: m * n * k) { member in
            if m >= n {
                // rows i of C: rows i of op(A), which start at row i of A, or at column i when A is transposed
                let rows = member.share(of: m)
                if rows.isEmpty { return }
                for part in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerCall) {
                    let partRows = part..<min(rows.upperBound, part + rowsPerCall)
                    let aStart = transA == .none ? a + part * lda : a + part
                    gemmOnThisThread(transA, transB, m: partRows.count, n: n, k: k, alpha: alpha, a: aStart,
                                     lda: lda, b: b, ldb: ldb, beta: beta, c: c + part * ldc, ldc: ldc)
                }
            } else {
                // columns j of C: columns j of op(B), which start at column j of B, or at row j when transposed
                let columns = member.share(of: n)
                if columns.isEmpty { return }
                let bStart = transB == .none ? b + columns.lowerBound : b + columns.lowerBound * ldb
                gemmOnThisThread(transA, transB, m: m, n: columns.count, k: k, alpha: alpha, a: a, lda: lda,
                                 b: bStart, ldb: ldb, beta: beta, c: c + columns.lowerBound, ldc: ldc)
            }
        }
    }

    /// `gemm` on the calling thread alone, for callers that share the work themselves (the transformer's decoder:
    /// each thread computes its own attention heads).
    static func gemmOnThisThread(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 1 {
            // One row (generation at batch 1): a matrix-vector product, which BLAS does without gemm's packing.
            // c(n) = op(B)^T a(k): B stored (n, k) when transposed, (k, n) when not; a's k values are a row of A
            // (stride 1) or, when A is transposed, a column (stride lda).
            let incA = transA == .none ? 1 : lda
            if transB == .transposed {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, blasInt(n), blasInt(k), alpha, b, blasInt(ldb),
                            a, blasInt(incA), beta, c, 1)
            } else {
                cblas_sgemv(CblasRowMajor, CblasTrans, blasInt(k), blasInt(n), alpha, b, blasInt(ldb),
                            a, blasInt(incA), beta, c, 1)
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas, blasInt(m), blasInt(n), blasInt(k),
            alpha, a, blasInt(lda), b, blasInt(ldb), beta, c, blasInt(ldc))
    }

    /// y = alpha * op(A) * x + beta * y, where A is stored (rows, cols) with row stride `lda`.
    public static func gemv(
        _ transA: Transpose, rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        if rows == 0 || cols == 0 { return }
        context.productTeam.runParts(work: rows * cols) { member in
            // each thread computes its share of y: rows of A, or columns of A when it is transposed
            if transA == .none {
                let part = member.share(of: rows)
                if part.isEmpty { return }
                cblas_sgemv(CblasRowMajor, CblasNoTrans, blasInt(part.count), blasInt(cols), alpha,
                            a + part.lowerBound * lda, blasInt(lda), x, 1, beta, y + part.lowerBound, 1)
            } else {
                let part = member.share(of: cols)
                if part.isEmpty { return }
                cblas_sgemv(CblasRowMajor, CblasTrans, blasInt(rows), blasInt(part.count), alpha,
                            a + part.lowerBound, blasInt(lda), x, 1, beta, y + part.lowerBound, 1)
            }
        }
    }

    /// Makes each member of `team` do one small product at once. OpenBLAS maps its work buffer (about 135 MB of
    /// address space per thread, seen with strace) at a thread's first product, and when that mapping fails, as it
    /// can later under an address-space cap once charlm's own buffers have grown, OpenBLAS retries it forever (a
    /// hang Ctrl-C cannot stop, found by the hostile-input run). Mapped first, while the memory is there, it is
    /// reused for every later product, and charlm's own budget (Resources.swift) sees it as used.
    static func mapWorkBuffers(team: ThreadTeam) {
        // 128^3: above OpenBLAS's small-matrix path (which takes no buffer); and a matrix-vector product, as
        // generation's take a buffer too.
        let n = 128
        team.run { _ in
            var a = [Float](repeating: 0, count: n * n), c = [Float](repeating: 0, count: n * n)
            a.withUnsafeMutableBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    gemmOnThisThread(.none, .none, m: n, n: n, k: n, alpha: 1, a: a.baseAddress!, lda: n,
                                     b: a.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: n)
                    gemmOnThisThread(.none, .transposed, m: 1, n: n, k: n, alpha: 1, a: a.baseAddress!, lda: n,
                                     b: a.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// Makes BLAS itself single-threaded, once per process (OpenBLAS only; Accelerate manages its own): see the
    /// type's comment. A `ComputeContext` decides how many threads share the products.
    ///
    /// OpenBLAS's threaded build starts its threads when the library is loaded, and each spins (calling
    /// `sched_yield`) for about 2^28 processor cycles before it sleeps: 80-100 ms of a core at every start of charlm,
    /// the whole of a short command (`charlm-bench generate-speed` at H 256 generates 2,000 characters in 50 ms) and
    /// a third of its threads on a 2-core machine. Its `blas_thread_shutdown_` ends them at once; it is looked up by
    /// name, as OpenBLAS's serial build has no such function (and no threads). BLAS starts them again if ever asked
    /// for more than one thread, which charlm never does.
    static let setThreadCountOnce: Void = {
        #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        if let program = dlopen(nil, RTLD_NOW), let shutdown = dlsym(program, "blas_thread_shutdown_") {
            _ = unsafeBitCast(shutdown, to: (@convention(c) () -> Int32).self)()
        }
        #endif
    }()

    /// The library: "OpenBLAS" on Linux, "Accelerate" on macOS.
    public static var libraryName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return "OpenBLAS"
        #endif
    }

    /// The name of the kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...), for benchmark reports.
    public static var coreName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return String(cString: openblas_get_corename())
        #endif
    }
}

#if canImport(Accelerate)
@inline(__always) private func blasInt(_ value: Int) -> Int32 { Int32(value) }
#else
@inline(__always) private func blasInt(_ value: Int) -> blasint { blasint(value) }
#endif
