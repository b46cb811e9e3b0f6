// The only file that talks to BLAS: OpenBLAS's C interface on Linux, Accelerate on macOS. Every matrix product in
// CharLM goes through `BLAS.gemm` or `BLAS.gemv`, always on row-major float32 matrices.

#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Whether a matrix operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    fileprivate var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Row-major single-precision BLAS.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, where op(A) is (m, k), op(B) is (k, n) and C is (m, n).
    ///
    /// Leading dimensions are row strides in elements: `lda` is the stored row length of A (k when A is used as
    /// stored, m when transposed), and likewise `ldb`, `ldc`. They let callers multiply sub-blocks of larger buffers.
    @inline(__always)
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
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
    @inline(__always)
    public static func gemv(
        _ transA: Transpose, rows: Int, cols: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
    ) {
        if rows == 0 || cols == 0 { return }
        cblas_sgemv(
            CblasRowMajor, transA.cblas, blasInt(rows), blasInt(cols), alpha, a, blasInt(lda), x, 1, beta, y, 1)
    }

    /// Sets how many threads BLAS may use (OpenBLAS only; Accelerate manages its own).
    public static func setThreadCount(_ count: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(max(1, count)))
        #endif
    }

    /// How many threads BLAS uses now (1 where it cannot be asked).
    public static var threadCount: Int {
        #if canImport(Accelerate)
        return 1
        #else
        return Int(openblas_get_num_threads())
        #endif
    }
}

#if canImport(Accelerate)
@inline(__always) private func blasInt(_ value: Int) -> Int32 { Int32(value) }
#else
@inline(__always) private func blasInt(_ value: Int) -> blasint { blasint(value) }
#endif
