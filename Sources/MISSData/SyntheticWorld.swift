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
/// - Users have a long tail of interests (sub-topics, mostly within one or two super-topics) and
///   lifelong sequences from tens to thousands of behaviours, made of episodes: a few to tens of
///   behaviours on one interest. An episode returns to one of the user's old interests, chosen with a
///   heavy-tailed preference, or takes up a new one; so an old interest comes back after hundreds or
///   thousands of behaviours, which only a model reading the long history can see (the premise of
///   MISS). `Config.recurrence` off gives the control, whose interests drift away for good.
/// - Users rarely watch an item twice: within a sub-topic they pick items they have not seen, and an
///   interest whose sub-topic they have mostly seen draws them less. So what predicts a user's next
///   items is their interests and styles, not the items they already watched (`recurrence(in:truth:gap:)`
///   measures both).
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
        /// Whether old interests come back (the default) or drift away for good (the control).
        ///
        /// Both worlds run the same generator on the same users (length, styles, breadth) and differ in one
        /// rule: when an episode returns to an interest the user already has, a recurring user may return to
        /// any of them, a drifting user only to one it followed within the last `forgetAfter` behaviours; an
        /// interest left longer is gone, and counts as the user's interest (in the feedback) only while it is
        /// current. What follows from that rule: a drifting user turns to new sub-topics whenever its current
        /// ones are used up, and leaves unwatched items behind in the ones it forgets, so its lifelong users
        /// run out of fresh sub-topics sooner and re-watch more (`recurrence(in:truth:gap:)` measures both).
        /// The control's dataset is named "synthetic-s<seed>-drifting".
        public var recurrence = true
        /// Behaviours per episode, drawn log-uniformly: a session on one interest.
        public var episodeLength = 3...30
        /// Breadth of a user's long tail: an episode takes up a new interest with probability a / (a + e),
        /// e the episodes so far and a = max(1, length / (interestDepth · items per sub-topic)), and whenever
        /// no interest it may return to has unseen items left. A lifelong user needs many sub-topics to find
        /// unseen items in, so breadth grows with the length and shrinks with the sub-topics' size; most of
        /// the tail is taken up early and keeps coming back. An episode also ends early once its sub-topic
        /// holds nothing unseen.
        public var interestDepth = 2.4
        /// Probability that a behaviour re-watches an item the user has seen in that sub-topic (otherwise it
        /// is an unseen one while the sub-topic has any).
        public var rewatch = 0.02
        /// Without `recurrence`: an interest not followed for more than this many behaviours is gone for good.
        /// Below the gap of 200 at which tests and `miss synth` read `recurrence(in:truth:gap:)`, so the
        /// control shows no returns there.
        public var forgetAfter = 150
        public init() {}
    }

    public static let objectives = ["view", "long_view", "like"]
    /// 2020-01-01T00:00:00Z: the world's clock starts here.
    static let epoch: Int64 = 1_577_836_800

    /// Ground truth that the dataset does not contain (for diagnostics and tests).
    public struct Truth: Sendable {
        public var itemSubtopic: [Int32]
        public var itemStyle: [Int32]
        /// Per behaviour (in the dataset's order): the sub-topic the user was following in that episode,
        /// or -1 for an exploration (an item from a random sub-topic).
        public var behaviourInterest: [Int32]

        public init(itemSubtopic: [Int32], itemStyle: [Int32], behaviourInterest: [Int32]) {
            self.itemSubtopic = itemSubtopic
            self.itemStyle = itemStyle
            self.behaviourInterest = behaviourInterest
        }
    }

    public static func generate(_ config: Config, progress: ((Int, Int) -> Void)? = nil) -> (dataset: Dataset, truth: Truth) {
        precondition(config.items > 0 && config.users > 0, "synthetic world needs items and users")
        precondition(config.episodeLength.lowerBound >= 1, "episodes need at least one behaviour")
        let rng = Xoshiro256StarStar(seed: config.seed)
        var wordRng = rng.derived("words")
        var latentRng = rng.derived("latent")
        var itemRng = rng.derived("items")
        let userRng = rng.derived("users")

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

        // Per sub-topic item lists, their popularity in all, and a user's state over them.
        var bySub = [[Int]](repeating: [], count: nSub)
        for i in 0..<config.items { bySub[Int(itemSub[i])].append(i) }
        let subPopularity = bySub.map { $0.reduce(0) { $0 + popularity[$1] } }
        let perSuper = config.topicsPerSuper * config.subtopicsPerTopic
        var seen = [Bool](repeating: false, count: config.items)
        var seenItems: [Int] = []
        var unseenCount = [Int](repeating: 0, count: nSub)
        var unseenPopularity = [Double](repeating: 0, count: nSub)
        var preference = [Double](repeating: 0, count: nSub)  // > 0: an interest the user has taken up
        var lastFollowed = [Int](repeating: 0, count: nSub)   // the last behaviour of an episode on it
        var held: [Int] = []                                  // interests in the order taken up

        // Users.
        var builder = BehaviourTableBuilder()
        var behaviourInterest: [Int32] = []
        let logRatio = log(Double(config.maxLength) / Double(config.minLength))
        let logEpisode = (log(Double(config.episodeLength.lowerBound)), log(Double(config.episodeLength.upperBound)))
        for u in 0..<config.users {
            progress?(u, config.users)
            let uid = "u\(u)"
            // Traits come from their own stream, so a user is the same person with and without recurrence.
            var traits = userRng.derived("traits \(u)")
            var life = userRng.derived("life \(u)")
            let length = Int((Double(config.minLength) * exp(logRatio * pow(traits.nextDouble(), config.lengthSkew))).rounded())
            let likedStyles = Set((0..<2).map { _ in Int32(traits.nextInt(below: config.styles)) })
            let styleAffinity = 0.7 + 0.25 * traits.nextDouble()  // how strongly this user follows styles
            // Liked styles' items weigh `styleBoost` times their popularity: in a sub-topic with every style
            // equally represented, the user picks a liked style with probability `styleAffinity`.
            let styleBoost = likedStyles.count < config.styles
                ? styleAffinity / (1 - styleAffinity) * Double(config.styles - likedStyles.count) / Double(likedStyles.count) : 1
            let breadth = max(1, Double(length) * Double(nSub) / (config.interestDepth * Double(config.items)))
            var time = epoch + Int64(traits.nextInt(below: 365 * 86_400))

            for i in seenItems { seen[i] = false }
            seenItems.removeAll(keepingCapacity: true)
            for s in held { preference[s] = 0 }
            held.removeAll(keepingCapacity: true)
            for s in 0..<nSub { unseenCount[s] = bySub[s].count; unseenPopularity[s] = subPopularity[s] }

            var b = 0, episodes = 0
            // An interest is current while the user may return to it: always with recurrence, else only
            // within `forgetAfter` behaviours of its last episode.
            func isCurrent(_ s: Int) -> Bool {
                preference[s] > 0 && (config.recurrence || b - lastFollowed[s] <= config.forgetAfter)
            }
            // A current interest, by preference times the share of its sub-topic's popularity still unseen
            // (satiation); nil when none has anything left.
            func returning() -> Int? {
                var total = 0.0
                for s in held where isCurrent(s) { total += preference[s] * unseenPopularity[s] / subPopularity[s] }
                guard total > 0 else { return nil }
                var x = life.nextDouble() * total
                for s in held where isCurrent(s) {
                    x -= preference[s] * unseenPopularity[s] / subPopularity[s]
                    if x < 0 { return s }
                }
                return held.last { isCurrent($0) && unseenPopularity[$0] > 0 }  // x left ≥ 0 by rounding
            }
            // A sub-topic never taken up, with items: mostly beside one the user has taken up (same
            // super-topic; that one picked by preference), else anywhere. Nil once there is none.
            func takeUpNew() -> Int? {
                var s = -1
                for _ in 0..<20 {
                    if !held.isEmpty && life.nextDouble() < 0.7 {
                        var x = life.nextDouble() * held.reduce(0) { $0 + preference[$1] }
                        var near = held[held.count - 1]
                        for h in held { x -= preference[h]; if x < 0 { near = h; break } }
                        s = (near / perSuper) * perSuper + life.nextInt(below: perSuper)
                    } else {
                        s = life.nextInt(below: nSub)
                    }
                    if preference[s] == 0 && !bySub[s].isEmpty { break }
                    s = -1
                }
                if s < 0 {
                    let rest = (0..<nSub).filter { preference[$0] == 0 && !bySub[$0].isEmpty }
                    guard !rest.isEmpty else { return nil }
                    s = rest[life.nextInt(below: rest.count)]
                }
                // Heavy-tailed preference (Pareto, shape 1.2): a few interests dominate, most return rarely.
                preference[s] = pow(1 - life.nextDouble(), -1 / 1.2)
                lastFollowed[s] = b
                held.append(s)
                return s
            }

            while b < length {
                let takeNew = life.nextDouble() < breadth / (breadth + Double(episodes))
                let interest = (takeNew ? nil : returning()) ?? takeUpNew() ?? returning()
                    ?? held.max { lastFollowed[$0] < lastFollowed[$1] } ?? life.nextInt(below: nSub)
                episodes += 1
                let episode = Int(exp(logEpisode.0 + (logEpisode.1 - logEpisode.0) * life.nextDouble()).rounded())
                for k in 0..<min(episode, length - b) {
                    // The user leaves an episode whose sub-topic holds nothing unseen any more.
                    if k > 0 && unseenCount[interest] == 0 { break }
                    let explore = life.nextDouble() < 0.08
                    var sub = interest
                    if explore {
                        // Exploration looks for something unseen: a few tries for a sub-topic with unseen items.
                        for _ in 0..<4 {
                            sub = life.nextInt(below: nSub)
                            if unseenCount[sub] > 0 { break }
                        }
                    } else {
                        lastFollowed[interest] = b
                    }
                    let item: Int
                    let candidates = bySub[sub]
                    let wantsRewatch = life.nextDouble() < config.rewatch
                    if candidates.isEmpty {
                        item = life.nextInt(below: config.items)  // only when items < sub-topics
                    } else {
                        // Unseen items by popularity (liked styles weighted up); seen ones when re-watching
                        // or when the sub-topic holds nothing unseen.
                        let rewatch = unseenCount[sub] == 0 || (wantsRewatch && unseenCount[sub] < candidates.count)
                        var total = 0.0
                        for i in candidates where seen[i] == rewatch {
                            total += popularity[i] * (likedStyles.contains(itemStyle[i]) ? styleBoost : 1)
                        }
                        var x = life.nextDouble() * total
                        var pick = candidates.last { seen[$0] == rewatch }!
                        for i in candidates where seen[i] == rewatch {
                            x -= popularity[i] * (likedStyles.contains(itemStyle[i]) ? styleBoost : 1)
                            if x < 0 { pick = i; break }
                        }
                        item = pick
                    }
                    if !seen[item] {
                        seen[item] = true
                        seenItems.append(item)
                        let s = Int(itemSub[item])
                        unseenCount[s] -= 1
                        unseenPopularity[s] = unseenCount[s] == 0 ? 0 : unseenPopularity[s] - popularity[item]
                    }
                    // Feedback: affinity from interest match and style match.
                    let inInterest = isCurrent(Int(itemSub[item]))
                    let styleMatch = likedStyles.contains(itemStyle[item])
                    let affinity = (inInterest ? 1.2 : -0.8) + (styleMatch ? 1.0 : -0.6) + 0.5 * life.nextNormal()
                    let longView = life.nextDouble() < logistic(1.6 * affinity - 0.6)
                    let like = longView && life.nextDouble() < logistic(1.5 * affinity - 1.8)
                    let labels: UInt8 = 1 | (longView ? 2 : 0) | (like ? 4 : 0)
                    builder.add(user: uid, item: item, time: time, labels: labels)
                    behaviourInterest.append(explore ? -1 : Int32(interest))
                    time += Int64(30 + life.nextInt(below: 6 * 3600))
                    b += 1
                }
            }
        }
        progress?(config.users, config.users)
        // Times increase within a user and users arrive one after another: the table keeps generation order.
        let table = builder.build()
        let dataset = Dataset(
            name: config.recurrence ? "synthetic-s\(config.seed)" : "synthetic-s\(config.seed)-drifting", objectives: objectives,
            itemIDs: (0..<config.items).map { "v\($0)" }, itemTitles: titles, itemTexts: texts,
            itemCategories: itemCategories, categoryNames: categoryNames,
            modalities: [Modality(name: "text", values: text), Modality(name: "visual", values: visual)],
            userIDs: table.userIDs, userOffsets: table.offsets, behaviourItems: table.items,
            behaviourTimes: table.times, behaviourLabels: table.labels)
        return (dataset, Truth(itemSubtopic: itemSub, itemStyle: itemStyle, behaviourInterest: behaviourInterest))
    }

    /// How much of a world's activity returns to old interests after long gaps, and how much re-watches.
    public struct Recurrence: Sendable, Equatable {
        /// Share of behaviours in a run of an interest (consecutive behaviours on it, explorations in between
        /// ignored) that last appeared more than `gap` behaviours before the run began: activity that a
        /// window of the last `gap` behaviours does not explain. Explorations count, never as returns.
        public var returning: Double
        /// Share of behaviours that begin such a run (the first behaviour back on the old interest).
        public var returns: Double
        /// Share of behaviours whose item the same user already had earlier in its sequence.
        public var reconsumption: Double
    }

    /// `Recurrence` of a generated world (its dataset and truth).
    public static func recurrence(in dataset: Dataset, truth: Truth, gap: Int = 200) -> Recurrence {
        precondition(truth.behaviourInterest.count == dataset.behaviourCount, "truth of another dataset")
        var returning = 0, returns = 0, repeated = 0
        var last: [Int32: Int] = [:]
        var seen = Set<Int32>()
        for u in 0..<dataset.userCount {
            last.removeAll(keepingCapacity: true)
            seen.removeAll(keepingCapacity: true)
            let start = dataset.userOffsets[u]
            var previous: Int32 = -1, inReturn = false
            for b in dataset.behaviours(of: u) {
                if !seen.insert(dataset.behaviourItems[b]).inserted { repeated += 1 }
                let s = truth.behaviourInterest[b]
                guard s >= 0 else { continue }
                let k = b - start
                if s != previous {
                    inReturn = last[s].map { k - $0 > gap } ?? false
                    if inReturn { returns += 1 }
                    previous = s
                }
                if inReturn { returning += 1 }
                last[s] = k
            }
        }
        let n = Double(max(1, dataset.behaviourCount))
        return Recurrence(returning: Double(returning) / n, returns: Double(returns) / n, reconsumption: Double(repeated) / n)
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
