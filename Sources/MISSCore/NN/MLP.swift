/// Multi-layer perceptron: Linear → ReLU → … → Linear (no activation after the last layer).
///
/// forward:  x (N, sizes[0]) -> y (N, sizes.last); the cache keeps every layer's input and
///           every hidden activation for the backward pass.
/// backward: dy (N, sizes.last) -> dx (N, sizes[0]), accumulating every layer's gradients.
public struct MLP: ParameterContainer {
    public let layers: [Linear]

    /// `sizes` = [input, hidden…, output]; `rowwise`: see `Linear.rowwise`.
    public init(name: String, sizes: [Int], rowwise: Bool = false, rng: inout Xoshiro256StarStar) {
        precondition(sizes.count >= 2, "MLP needs at least an input and an output size")
        layers = (0..<(sizes.count - 1)).map { i in
            Linear(name: "\(name).\(i)", inputs: sizes[i], outputs: sizes[i + 1], rowwise: rowwise, rng: &rng)
        }
    }

    public init(layers: [Linear]) { self.layers = layers }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var inputSize: Int { layers[0].inputs }
    public var outputSize: Int { layers[layers.count - 1].outputs }

    public struct Cache {
        /// inputs[i] is what layer i saw: x, then ReLU outputs.
        public var inputs: [Matrix] = []
    }

    public func forward(_ x: Matrix) -> (y: Matrix, cache: Cache) {
        var cache = Cache()
        var h = x
        for (i, layer) in layers.enumerated() {
            cache.inputs.append(h)
            h = layer.forward(h)
            if i < layers.count - 1 { h = ReLU.forward(h) }
        }
        return (h, cache)
    }

    public func backward(cache: Cache, dy: Matrix) -> Matrix {
        var g = dy
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            if i < layers.count - 1 {
                // cache.inputs[i + 1] is the ReLU output that followed layer i.
                g = ReLU.backward(y: cache.inputs[i + 1], dy: g)
            }
            g = layers[i].backward(x: cache.inputs[i], dy: g)
        }
        return g
    }
}
