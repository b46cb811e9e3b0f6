// The large products (Products.swift): the packed path (A in place for the wide and narrow kernels, the blocked path
// for the avx2 kernel) and the BLAS path against the naive triple loop, in every transpose, with and without
// accumulation, split by panels and by rows; the packed path's results identical whatever its panel width, depth
// block and thread count; the measured table and the CPU class it is read for; and the whole model's gradients
// identical whichever kernel the packed path uses and whatever CPU class the context computes as, and within float32
// rounding of the BLAS path's. Every CPU class narrower than this CPU's is built explicitly here, so the tests
// exercise the 256-bit kernels on an AVX-512 machine whatever CHARLM_VECTOR_BITS says.

@testable import CharLM
import Foundation
import Testing

private func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in generator.nextFloat(in: -1, 1) }
}

/// One product's operands, stored with padded strides (as sub-blocks of larger buffers are).
private struct ProductCase {
    let transA: Bool, transB: Bool, M: Int, N: Int, K: Int
    var lda: Int { (transA ? M : K) + 3 }
    var ldb: Int { (transB ? K : N) + 2 }
    var ldc: Int { N + 5 }
    var a: [Float] { randomFloats((transA ? K : M) * lda, seed: 11) }
    var b: [Float] { randomFloats((transB ? N : K) * ldb, seed: 12) }
    var c: [Float] { randomFloats(M * ldc, seed: 13) }

    /// C after `Products.packedGemm` with `kernel`, or `Products.gemm` on a context when `context` is given.
    func run(accumulate: Bool, kernel: PackedKernel = .narrow, team: ThreadTeam = ThreadTeam.solo,
             context: ComputeContext? = nil) -> [Float] {
        var c = self.c
        let (a, b) = (self.a, self.b)
        a.withUnsafeBufferPointer { aBuffer in
            b.withUnsafeBufferPointer { bBuffer in
                c.withUnsafeMutableBufferPointer { cBuffer in
                    let (ta, tb): (Transpose, Transpose) = (transA ? .transposed : .none, transB ? .transposed : .none)
                    if let context {
                        Products.gemm(ta, tb, m: M, n: N, k: K, a: aBuffer.baseAddress!, lda: lda,
                                      b: bBuffer.baseAddress!, ldb: ldb, beta: accumulate ? 1 : 0,
                                      c: cBuffer.baseAddress!, ldc: ldc, context: context)
                    } else {
                        Products.packedGemm(ta, tb, m: M, n: N, k: K, a: aBuffer.baseAddress!, lda: lda,
                                            b: bBuffer.baseAddress!, ldb: ldb, accumulate: accumulate,
                                            c: cBuffer.baseAddress!, ldc: ldc, kernel: kernel,
                                            scratch: ScratchBuffer(), team: team)
                    }
                }
            }
        }
        return c
    }

    /// The largest difference from the naive product over C's N columns, and that columns past N are untouched,
    /// measured in units of the float32 error bound K * 2^-23 * sum_k |a_ik b_kj| (+ |c_ij|).
    func worstError(of result: [Float], accumulate: Bool) -> (bound: Double, padding: Bool) {
        let (a, b, start) = (self.a, self.b, self.c)
        let expected = naiveGemm(transA: transA, transB: transB, m: M, n: N, k: K, alpha: 1, a: a, lda: lda, b: b,
                                 ldb: ldb, beta: accumulate ? 1 : 0, c: start, ldc: ldc)
        var worst = 0.0
        var paddingUntouched = true
        for i in 0..<M {
            for j in 0..<ldc {
                let index = i * ldc + j
                if j >= N {
                    paddingUntouched = paddingUntouched && result[index] == start[index]
                    continue
                }
                var magnitude = accumulate ? abs(Double(start[index])) : 0
                for p in 0..<K {
                    let x = transA ? a[p * lda + i] : a[i * lda + p]
                    let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                    magnitude += abs(Double(x) * Double(y))
                }
                let bound = Double(K + 1) * 0x1p-23 * magnitude + 1e-30
                worst = max(worst, abs(Double(result[index]) - expected[index]) / bound)
            }
        }
        return (worst, paddingUntouched)
    }
}

// Shapes around the kernel's six rows and 16- or 64-column panels, with K past one depth block (1024, and the
// blocked path's 512) in two, and M past the blocked path's block of rows (168) and below six.
private let productCases: [ProductCase] = [
    ProductCase(transA: false, transB: true, M: 13, N: 70, K: 33),
    ProductCase(transA: false, transB: false, M: 7, N: 128, K: 20),
    ProductCase(transA: true, transB: false, M: 19, N: 64, K: 1100),
    ProductCase(transA: true, transB: true, M: 6, N: 17, K: 5),
    ProductCase(transA: false, transB: false, M: 50, N: 130, K: 1030),
    ProductCase(transA: false, transB: true, M: 175, N: 40, K: 600),
    ProductCase(transA: true, transB: false, M: 4, N: 33, K: 520),
]

/// The CPU classes this CPU can compute as: its own and every narrower one.
/// The CPU classes this machine can compute as (TimeLoopTests uses them too).
let runnableClasses = CPUClass.allCases.filter { $0.vectorBits <= CPUClass.detected.vectorBits }

@Test(arguments: productCases, PackedKernel.allCases)
private func packedProductMatchesNaiveInEveryTranspose(_ product: ProductCase, kernel: PackedKernel) {
    for accumulate in [true, false] {
        let (worst, padding) = product.worstError(of: product.run(accumulate: accumulate, kernel: kernel),
                                                  accumulate: accumulate)
        #expect(worst <= 1, "\(product) \(kernel) accumulate \(accumulate): \(worst) of the bound")
        #expect(padding, "\(product) \(kernel): wrote past column N")
    }
}

@Test(arguments: productCases)
private func blasPathMatchesNaiveInEveryTranspose(_ product: ProductCase) {
    let context = ComputeContext(threads: 2, products: .blas)
    for accumulate in [true, false] {
        let (worst, padding) = product.worstError(of: product.run(accumulate: accumulate, context: context),
                                                  accumulate: accumulate)
        #expect(worst <= 1, "\(product) BLAS accumulate \(accumulate): \(worst) of the bound")
        #expect(padding)
    }
}

/// The packed path sums each element in the order k = 0, 1, ...: the same bits for either panel width, one or two
/// or three threads (which split by panels, or by rows when the panels do not share evenly), and one or several
/// depth blocks.
@Test(arguments: productCases)
private func packedProductIsIdenticalWhateverItsWidthAndThreads(_ product: ProductCase) {
    let reference = product.run(accumulate: true, kernel: .narrow)
    for kernel in PackedKernel.allCases {
        for threads in [1, 2, 3] {
            let team = ThreadTeam(size: threads)
            defer { team.shutDown() }
            // a large enough product that runParts shares it
            let result = product.run(accumulate: true, kernel: kernel, team: team)
            #expect(result == reference, "\(product) \(kernel) \(threads) threads")
        }
    }
}

/// Each CPU class's table sends every kind of product to a kernel that exists (packed or BLAS, never `auto`), and
/// `auto` computes each as its table says, to the naive product's float32 bound, for every class this CPU can compute
/// as.
@Test(arguments: productCases)
private func measuredTableComputesEveryTransposeOnEveryClass(_ product: ProductCase) {
    for cpu in runnableClasses {
        for role in ProductRole.allCases {
            #expect([.packed, .blas].contains(Products.measuredChoice(role, cpu: cpu)), "\(cpu) \(role)")
            #expect(ProductKernel.auto.choice(for: role, cpu: cpu) == Products.measuredChoice(role, cpu: cpu))
            #expect(ProductKernel.blas.choice(for: role, cpu: cpu) == .blas)
        }
        let context = ComputeContext(threads: 2, products: .auto, cpu: cpu)
        for accumulate in [true, false] {
            let (worst, padding) = product.worstError(of: product.run(accumulate: accumulate, context: context),
                                                      accumulate: accumulate)
            #expect(worst <= 1, "\(product) \(cpu) accumulate \(accumulate): \(worst) of the bound")
            #expect(padding)
        }
    }
}

@Test func productRolesFollowTheTransposes() {
    #expect(ProductRole(.none, .transposed) == .forward)
    #expect(ProductRole(.transposed, .none) == .weightGradient)
    #expect(ProductRole(.transposed, .transposed) == .weightGradient)
    #expect(ProductRole(.none, .none) == .inputGradient)
}

/// The compute line says the vectors' width, that it was forced when it is narrower than the CPU's, the register
/// block, and which kinds of product the table sends to BLAS.
@Test func computeSummarySaysWhatComputes() {
    for cpu in runnableClasses {
        for products in ProductKernel.allCases {
            let summary = ComputeContext(threads: 2, products: products, cpu: cpu).summary
            #expect(summary.contains("\(cpu.vectorBits)-bit vectors"), "\(summary)")
            #expect(summary.contains("6 x \(cpu.packedKernel.panelWidth) blocks"), "\(summary)")
            #expect(summary.contains("forced") == (cpu != CPUClass.detected), "\(summary)")
            let onBLAS = ProductRole.allCases.filter { products.choice(for: $0, cpu: cpu) == .blas }
            if onBLAS.count == ProductRole.allCases.count {
                #expect(summary.contains("products on BLAS"), "\(summary)")
            } else {
                for role in onBLAS { #expect(summary.contains("\(role)"), "\(summary)") }
            }
        }
    }
}

/// CHARLM_VECTOR_BITS narrows the CPU class to a width this CPU has, and anything else is refused with the value
/// and the rule; unset or empty, the CPU's own class.
@Test func vectorBitsFromTheEnvironmentNarrowTheClass() throws {
    let name = CPUClass.environmentVariable
    #expect(try CPUClass.fromEnvironment([:]) == CPUClass.detected)
    #expect(try CPUClass.fromEnvironment([name: ""]) == CPUClass.detected)
    for cpu in CPUClass.allCases {
        let environment = [name: String(cpu.vectorBits)]
        if cpu.vectorBits <= CPUClass.detected.vectorBits {
            #expect(try CPUClass.fromEnvironment(environment) == cpu)
        } else {
            #expect(throws: CharLMError.self) { try CPUClass.fromEnvironment(environment) }
        }
    }
    for bad in ["300", "avx2", "-256", "0"] {
        do {
            _ = try CPUClass.fromEnvironment([name: bad])
            Issue.record("\(bad) accepted")
        } catch {
            #expect(error.description.contains(name) && error.description.contains("'\(bad)'")
                    && error.description.contains("128, 256 or 512"), "\(error)")
        }
    }
}

/// The gradients of one forward, loss and backward pass of a model made from seed 5 on random tokens (seed 6), on
/// `context`; the products are checked to be large enough to take the packed path (T*B * H * 4H above
/// `Products.packedMinimumWork`).
private func stepGradients(_ config: RecurrentConfig, length T: Int, batch B: Int,
                           context: ComputeContext) throws -> [Float] {
    #expect(T * B * config.hiddenSize * 4 * config.hiddenSize >= Products.packedMinimumWork)
    var generator = SeededGenerator(seed: 5)
    let model = try RecurrentModel(config: config, generator: &generator)
    let workspace = model.makeWorkspace(length: T, batch: B, context: context)
    var tokens = SeededGenerator(seed: 6)
    for r in 0..<(T * B) {
        workspace.inputs[r] = Int32(tokens.next() % UInt64(config.vocabularySize))
        workspace.targets[r] = Int32(tokens.next() % UInt64(config.vocabularySize))
    }
    model.forward(length: T, batch: B, workspace: workspace, mode: .inference, generator: &generator)
    _ = model.loss(length: T, batch: B, workspace: workspace, gradient: true)
    model.gradients.zero()
    model.backward(length: T, batch: B, workspace: workspace)
    return model.gradients.array
}

/// A training step's products on the packed path give the gradients the BLAS path gives, to float32 rounding. (The
/// model tests check the default path's gradients against the naive model and finite differences.)
@Test func modelGradientsAgreeWhicheverProductKernel() throws {
    let config = RecurrentConfig(vocabularySize: 11, embeddingSize: 8, hiddenSize: 64, layerCount: 2)
    var results: [ProductKernel: [Float]] = [:]
    for products in ProductKernel.allCases {
        results[products] = try stepGradients(config, length: 9, batch: 8,
                                              context: ComputeContext(threads: 2, products: products))
    }
    let (packed, blas) = (results[.packed]!, results[.blas]!)
    var worst: Float = 0
    for index in packed.indices { worst = max(worst, abs(packed[index] - blas[index])) }
    #expect(worst < 1e-5, "largest gradient difference between the packed and BLAS products: \(worst)")
}

/// Every kernel sums each element in the same order, so a model's gradients on the packed products are the same bits
/// whatever CPU class the context computes as (each class its own time-loop kernel and large-product path).
@Test func modelGradientsAreIdenticalOnEveryCPUClass() throws {
    let config = RecurrentConfig(vocabularySize: 11, embeddingSize: 8, hiddenSize: 40, layerCount: 2)
    var results: [CPUClass: [Float]] = [:]
    for cpu in runnableClasses {
        results[cpu] = try stepGradients(config, length: 9, batch: 20,
                                         context: ComputeContext(threads: 2, products: .packed, cpu: cpu))
    }
    for cpu in runnableClasses { #expect(results[cpu] == results[CPUClass.detected], "\(cpu)") }
}

/// The generation path (Stepper.swift: interleaved gate panels, fused cell, one job per step) against the training
/// path's forward pass over the same sequences, step by step, for every cell, H a multiple of 16 and not (the GRU's
/// and the RNN's groups of 64 units: one partial group, or a full one and a partial one at H 70), one to three layers,
/// and one or several sequences at once.
@Test(arguments: [(H: 32, L: 2, B: 1), (H: 20, L: 1, B: 3), (H: 48, L: 3, B: 7), (H: 70, L: 2, B: 16)],
      LayerKind.allCases)
func stepperMatchesTheTrainingForwardPass(shape: (H: Int, L: Int, B: Int), cell: LayerKind) throws {
    let (V, T, B) = (13, 6, shape.B)
    let config = RecurrentConfig(vocabularySize: V, embeddingSize: 9, hiddenSize: shape.H, layerCount: shape.L,
                                 layerKind: cell)
    var generator = SeededGenerator(seed: 21)
    let model = try RecurrentModel(config: config, generator: &generator)
    for threads in [1, 2] {
        let context = ComputeContext(threads: threads)
        let workspace = model.makeWorkspace(length: T, batch: B, context: context)
        var tokens = SeededGenerator(seed: 22)
        for r in 0..<(T * B) { workspace.inputs[r] = Int32(tokens.next() % UInt64(V)) }
        model.forward(length: T, batch: B, workspace: workspace, mode: .inference, generator: &generator)
        let stepper = Stepper(config: config, batch: B)
        stepper.refresh(from: model, context: context)
        let zeroState = model.makeWorkspace(length: 1, batch: 1, context: context)
        zeroState.resetState(batch: 1)
        stepper.loadState(from: zeroState)
        var worst: Float = 0
        for t in 0..<T {
            stepper.step(tokens: workspace.inputs + t * B, context: context)
            for index in 0..<(B * V) {
                worst = max(worst, abs(stepper.logits.pointer[index] - workspace.logits.pointer[t * B * V + index]))
            }
        }
        #expect(worst < 1e-5, "\(cell) H \(shape.H) L \(shape.L) B \(B) threads \(threads): largest logit difference \(worst)")
    }
}
