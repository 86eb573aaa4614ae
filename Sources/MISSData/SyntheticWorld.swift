import Foundation
import MISSCore

/// A synthetic short-video world with a known structure, for tests, SampleData and benchmarks.
///
/// - A hidden topic hierarchy: super-topics → topics → sub-topics, each with a latent vector
///   (children scattered around their parent) and a made-up word, so titles can be read.
/// - Items belong to a sub-topic; their two content modalities ("text", "visual") are different
///   random projections of the item's latent vector plus independent noise.
/// - Content also carries nuisance factors unrelated to anyone's interests (think lighting, length,
///   production quality): a per-item latent, independent of the topic, projected into both
///   modalities. Raw content similarity is misled by it; item alignment learns to ignore it.
/// - Each item also has a hidden "style" that no content modality reveals; users prefer some styles,
///   so co-occurrence (ID embeddings) carries information that content does not.
/// - Users have several interests (sub-topics, mostly within one or two super-topics) that drift over
///   time, and lifelong sequences from tens to thousands of behaviours.
/// - Feedback has three correlated objectives: view (every behaviour), long view and like, more likely
///   the better the item fits the user's interests and styles.
///
/// Everything derives from `seed` through `Xoshiro256StarStar`: the same configuration gives the
/// same bytes.
public struct SyntheticWorld {
    public struct Config: Sendable {
        public var seed: UInt64 = 1
        public var items = 8_000
        public var users = 800
        public var superTopics = 8
        public var topicsPerSuper = 4
        public var subtopicsPerTopic = 4
        public var styles = 12
        public var latentDim = 16
        public var nuisanceDim = 8
        public var nuisanceStd: Float = 2.5
        public var textDim = 32
        public var visualDim = 24
        public var minLength = 20
        public var maxLength = 8_000
        /// Shapes the length distribution: length = min·(max/min)^(u^lengthSkew), u uniform.
        /// 2 makes most users short and a few lifelong.
        public var lengthSkew = 2.0
        public init() {}
    }

    public static let objectives = ["view", "long_view", "like"]
    /// 2020-01-01T00:00:00Z: the world's clock starts here.
    static let epoch: Int64 = 1_577_836_800

    /// Ground truth that the dataset does not contain (for diagnostics and tests).
    public struct Truth: Sendable {
        public var itemSubtopic: [Int32]
        public var itemStyle: [Int32]
    }

    public static func generate(_ config: Config, progress: ((Int, Int) -> Void)? = nil) -> (dataset: Dataset, truth: Truth) {
        precondition(config.items > 0 && config.users > 0, "synthetic world needs items and users")
        let rng = Xoshiro256StarStar(seed: config.seed)
        var wordRng = rng.derived("words")
        var latentRng = rng.derived("latent")
        var itemRng = rng.derived("items")
        var userRng = rng.derived("users")

        // Topic hierarchy.
        let nSuper = config.superTopics, nTopic = nSuper * config.topicsPerSuper
        let nSub = nTopic * config.subtopicsPerTopic
        let d = config.latentDim
        var used = Set<String>()
        func word() -> String {
            while true {
                let w = makeWord(&wordRng)
                if used.insert(w).inserted { return w }
            }
        }
        let superWords = (0..<nSuper).map { _ in word() }
        let topicWords = (0..<nTopic).map { _ in word() }
        let subWords = (0..<nSub).map { _ in word() }
        let superLatent = Matrix.randomNormal(nSuper, d, std: 3, using: &latentRng)
        var topicLatent = Matrix.randomNormal(nTopic, d, std: 1.5, using: &latentRng)
        for t in 0..<nTopic { for j in 0..<d { topicLatent[t, j] += superLatent[t / config.topicsPerSuper, j] } }
        var subLatent = Matrix.randomNormal(nSub, d, std: 0.8, using: &latentRng)
        for s in 0..<nSub { for j in 0..<d { subLatent[s, j] += topicLatent[s / config.subtopicsPerTopic, j] } }
        let textProjection = Matrix.randomNormal(d, config.textDim, std: 1 / Float(d).squareRoot(), using: &latentRng)
        let visualProjection = Matrix.randomNormal(d, config.visualDim, std: 1 / Float(d).squareRoot(), using: &latentRng)

        // Items: sub-topic sizes follow a Zipf-like law; popularity is log-normal.
        let subWeights = (0..<nSub).map { 1 / pow(Double($0 % 17 + 1), 0.6) }
        let subCDF = cumulative(subWeights)
        var itemSub = [Int32](repeating: 0, count: config.items)
        var itemStyle = [Int32](repeating: 0, count: config.items)
        var popularity = [Double](repeating: 0, count: config.items)
        var latent = Matrix(rows: config.items, cols: d)
        for i in 0..<config.items {
            // The first nSub items cover every sub-topic once, so none is empty.
            let s = i < nSub ? i : itemRng.nextIndex(cdf: subCDF)
            itemSub[i] = Int32(s)
            itemStyle[i] = Int32(itemRng.nextInt(below: config.styles))
            popularity[i] = exp(1.0 * itemRng.nextNormal())
            for j in 0..<d { latent[i, j] = subLatent[s, j] + 0.6 * Float(itemRng.nextNormal()) }
        }
        let nuisance = Matrix.randomNormal(config.items, config.nuisanceDim, std: config.nuisanceStd, using: &itemRng)
        let nuisanceText = Matrix.randomNormal(config.nuisanceDim, config.textDim, std: 1 / Float(config.nuisanceDim).squareRoot(), using: &latentRng)
        let nuisanceVisual = Matrix.randomNormal(config.nuisanceDim, config.visualDim, std: 1 / Float(config.nuisanceDim).squareRoot(), using: &latentRng)
        // Fixed-order products: SampleData must be the same bytes on every CPU (OpenBLAS kernels round differently).
        var text = deterministicMatmul(latent, textProjection) + deterministicMatmul(nuisance, nuisanceText)
        var visual = deterministicMatmul(latent, visualProjection) + deterministicMatmul(nuisance, nuisanceVisual)
        for i in 0..<text.count { text.storage[i] += 0.5 * Float(itemRng.nextNormal()) }
        for i in 0..<visual.count { visual.storage[i] += 0.5 * Float(itemRng.nextNormal()) }

        let adjectives = ["calm", "wild", "tiny", "golden", "rapid", "silent", "bright", "lazy", "bold", "gentle",
                          "epic", "cozy", "funny", "secret", "daily", "midnight"]
        var titles: [String] = []
        titles.reserveCapacity(config.items)
        var serial = [Int](repeating: 0, count: nSub)
        for i in 0..<config.items {
            let s = Int(itemSub[i])
            let t = s / config.subtopicsPerTopic
            serial[s] += 1
            let adj = adjectives[itemRng.nextInt(below: adjectives.count)]
            titles.append("\(adj.capitalized) \(subWords[s].capitalized) \(topicWords[t]) #\(serial[s])")
        }
        let texts = (0..<config.items).map { i -> String in
            let s = Int(itemSub[i]), t = s / config.subtopicsPerTopic
            return "\(titles[i]) \(topicWords[t]) \(superWords[t / config.topicsPerSuper])"
        }
        let categoryNames = (0..<nTopic).map { t in "\(superWords[t / config.topicsPerSuper])/\(topicWords[t])" }
        let itemCategories = itemSub.map { Int32(Int($0) / config.subtopicsPerTopic) }

        // Per (sub-topic) and per (sub-topic, style) item lists with popularity CDFs.
        var bySub = [[Int]](repeating: [], count: nSub)
        var bySubStyle = [[Int]](repeating: [], count: nSub * config.styles)
        for i in 0..<config.items {
            bySub[Int(itemSub[i])].append(i)
            bySubStyle[Int(itemSub[i]) * config.styles + Int(itemStyle[i])].append(i)
        }
        let subCDFs = bySub.map { cumulative($0.map { popularity[$0] }) }
        let subStyleCDFs = bySubStyle.map { cumulative($0.map { popularity[$0] }) }

        // Users.
        var builder = BehaviourTableBuilder()
        let logRatio = log(Double(config.maxLength) / Double(config.minLength))
        for u in 0..<config.users {
            progress?(u, config.users)
            let uid = "u\(u)"
            let length = Int((Double(config.minLength) * exp(logRatio * pow(userRng.nextDouble(), config.lengthSkew))).rounded())
            var interests = (0..<(2 + userRng.nextInt(below: 5))).map { _ in pickInterest(config, &userRng, near: nil) }
            // Interests cluster: most lie under the first interest's super-topic.
            for k in 1..<interests.count where userRng.nextDouble() < 0.6 {
                interests[k] = pickInterest(config, &userRng, near: interests[0])
            }
            var weights = interests.map { _ in 0.2 + userRng.nextDouble() }
            let likedStyles = Set((0..<2).map { _ in Int32(userRng.nextInt(below: config.styles)) })
            let styleList = Array(likedStyles).sorted()
            let styleAffinity = 0.7 + 0.25 * userRng.nextDouble()  // how strongly this user follows styles
            let driftEvery = max(10, length / (2 + userRng.nextInt(below: 4)))
            var time = epoch + Int64(userRng.nextInt(below: 365 * 86_400))
            for b in 0..<length {
                if b > 0 && b % driftEvery == 0 {
                    // Drift: one interest is replaced by a neighbour or a fresh one.
                    let k = userRng.nextInt(below: interests.count)
                    interests[k] = pickInterest(config, &userRng, near: userRng.nextDouble() < 0.5 ? interests[k] : nil)
                    weights[k] = 0.2 + userRng.nextDouble()
                }
                let explore = userRng.nextDouble() < 0.08
                let sub = explore ? userRng.nextInt(below: nSub) : interests[userRng.nextIndex(cdf: cumulative(weights))]
                let item: Int
                let style = styleList[userRng.nextInt(below: styleList.count)]
                let styled = bySubStyle[sub * config.styles + Int(style)]
                if bySub[sub].isEmpty {
                    item = userRng.nextInt(below: config.items)  // only when items < sub-topics
                } else if !styled.isEmpty && userRng.nextDouble() < styleAffinity {
                    item = styled[userRng.nextIndex(cdf: subStyleCDFs[sub * config.styles + Int(style)])]
                } else {
                    item = bySub[sub][userRng.nextIndex(cdf: subCDFs[sub])]
                }
                // Feedback: affinity from interest match and style match.
                let inInterest = interests.contains(Int(itemSub[item]))
                let styleMatch = likedStyles.contains(itemStyle[item])
                let affinity = (inInterest ? 1.2 : -0.8) + (styleMatch ? 1.0 : -0.6) + 0.5 * userRng.nextNormal()
                let longView = userRng.nextDouble() < logistic(1.6 * affinity - 0.6)
                let like = longView && userRng.nextDouble() < logistic(1.5 * affinity - 1.8)
                let labels: UInt8 = 1 | (longView ? 2 : 0) | (like ? 4 : 0)
                builder.add(user: uid, item: item, time: time, labels: labels)
                time += Int64(30 + userRng.nextInt(below: 6 * 3600))
            }
        }
        progress?(config.users, config.users)
        let table = builder.build()
        let dataset = Dataset(
            name: "synthetic-s\(config.seed)", objectives: objectives,
            itemIDs: (0..<config.items).map { "v\($0)" }, itemTitles: titles, itemTexts: texts,
            itemCategories: itemCategories, categoryNames: categoryNames,
            modalities: [Modality(name: "text", values: text), Modality(name: "visual", values: visual)],
            userIDs: table.userIDs, userOffsets: table.offsets, behaviourItems: table.items,
            behaviourTimes: table.times, behaviourLabels: table.labels)
        return (dataset, Truth(itemSubtopic: itemSub, itemStyle: itemStyle))
    }

    private static func pickInterest(_ c: Config, _ rng: inout Xoshiro256StarStar, near: Int?) -> Int {
        let perSuper = c.topicsPerSuper * c.subtopicsPerTopic
        guard let near else { return rng.nextInt(below: c.superTopics * perSuper) }
        return (near / perSuper) * perSuper + rng.nextInt(below: perSuper)
    }

    private static func makeWord(_ rng: inout Xoshiro256StarStar) -> String {
        let onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr", "br", "kl"]
        let vowels = ["a", "e", "i", "o", "u", "ai", "oo"]
        let codas = ["", "", "n", "r", "s", "l", "x"]
        let syllables = 2 + rng.nextInt(below: 2)
        var w = ""
        for s in 0..<syllables {
            w += onsets[rng.nextInt(below: onsets.count)] + vowels[rng.nextInt(below: vowels.count)]
            if s == syllables - 1 { w += codas[rng.nextInt(below: codas.count)] }
        }
        return w
    }
}

func logistic(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// Running sums of non-negative weights (the last entry is the total).
func cumulative(_ weights: [Double]) -> [Double] {
    var out = [Double]()
    out.reserveCapacity(weights.count)
    var s = 0.0
    for w in weights { s += w; out.append(s) }
    return out
}
