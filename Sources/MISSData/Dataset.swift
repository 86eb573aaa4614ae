import MISSCore

/// One content modality of every item: a dense (items × dim) matrix, e.g. "text" or "visual".
public struct Modality: Sendable, Equatable {
    public var name: String
    public var values: Matrix

    public init(name: String, values: Matrix) {
        self.name = name
        self.values = values
    }

    public var dim: Int { values.cols }
}

/// The in-memory dataset: items, users and their time-ordered behaviours.
///
/// Storage is columnar. Behaviours are grouped by user (CSR: `userOffsets`), time-ordered within a
/// user, so a user's last L behaviours are a contiguous slice of `behaviourItems`.
/// Each behaviour carries one bit per objective (bit t = objective t), e.g. view / long view / like.
public struct Dataset: Sendable {
    public var name: String
    /// Objective names; at most 8 (one bit each in `behaviourLabels`).
    public var objectives: [String]

    // Items (index = internal item id).
    public var itemIDs: [String]
    public var itemTitles: [String]
    /// Each item's own text (title, genres …): never what users wrote about it, which is in
    /// `itemAnnotations` so that a split can leave out its evaluation users' words (`contentTexts`).
    public var itemTexts: [String]
    /// Index into `categoryNames`, or -1 when unknown (genre for MovieLens, topic for the synthetic world).
    public var itemCategories: [Int32]
    public var categoryNames: [String]
    /// Content modalities known at import time (items × dim each).
    public var modalities: [Modality]
    /// Text users wrote about items (MovieLens tags), with who wrote it.
    public var itemAnnotations: ItemAnnotations

    // Users and behaviours.
    public var userIDs: [String]
    /// `userOffsets[u] ..< userOffsets[u + 1]` are user u's behaviours; count = users + 1.
    public var userOffsets: [Int]
    public var behaviourItems: [Int32]
    public var behaviourTimes: [Int64]
    public var behaviourLabels: [UInt8]

    public init(name: String, objectives: [String], itemIDs: [String], itemTitles: [String], itemTexts: [String],
                itemCategories: [Int32], categoryNames: [String], modalities: [Modality],
                itemAnnotations: ItemAnnotations = ItemAnnotations(), userIDs: [String],
                userOffsets: [Int], behaviourItems: [Int32], behaviourTimes: [Int64], behaviourLabels: [UInt8]) {
        self.name = name
        self.objectives = objectives
        self.itemIDs = itemIDs
        self.itemTitles = itemTitles
        self.itemTexts = itemTexts
        self.itemCategories = itemCategories
        self.categoryNames = categoryNames
        self.modalities = modalities
        self.itemAnnotations = itemAnnotations
        self.userIDs = userIDs
        self.userOffsets = userOffsets
        self.behaviourItems = behaviourItems
        self.behaviourTimes = behaviourTimes
        self.behaviourLabels = behaviourLabels
    }

    public var itemCount: Int { itemIDs.count }
    public var userCount: Int { userIDs.count }
    public var behaviourCount: Int { behaviourItems.count }

    /// Index range of user u's behaviours, oldest first.
    public func behaviours(of user: Int) -> Range<Int> { userOffsets[user]..<userOffsets[user + 1] }

    public func sequenceLength(of user: Int) -> Int { userOffsets[user + 1] - userOffsets[user] }

    /// The last `limit` behaviours of `user` that come before behaviour index `end` (exclusive).
    public func recentBehaviours(of user: Int, before end: Int? = nil, limit: Int) -> Range<Int> {
        let all = behaviours(of: user)
        let stop = min(end ?? all.upperBound, all.upperBound)
        return max(all.lowerBound, stop - limit)..<stop
    }

    public func hasObjective(_ objective: Int, behaviour: Int) -> Bool {
        behaviourLabels[behaviour] & (1 << UInt8(objective)) != 0
    }

    public func category(ofItem item: Int) -> String? {
        let c = Int(itemCategories[item])
        return c >= 0 && c < categoryNames.count ? categoryNames[c] : nil
    }

    /// Checks every invariant; `source` names the file the dataset came from in the error.
    public func validate(source: String) throws {
        func fail(_ field: String, _ problem: String) -> InputError {
            InputError(file: source, location: "field '\(field)'", problem: problem,
                       fix: "Re-import the data or regenerate it with `miss synth`/`miss import`")
        }
        guard !objectives.isEmpty, objectives.count <= 8 else {
            throw fail("objectives", "has \(objectives.count) objectives, needs 1 to 8")
        }
        guard itemCount > 0 else {
            throw InputError(file: source, problem: "the dataset has no items",
                             fix: "Check that the item and interaction files are not empty")
        }
        guard userCount > 0, behaviourCount > 0 else {
            throw InputError(file: source, problem: "the dataset has no users with behaviours",
                             fix: "Check that the interaction file is not empty")
        }
        for (field, count) in [("itemTitles", itemTitles.count), ("itemTexts", itemTexts.count), ("itemCategories", itemCategories.count)]
        where count != itemCount {
            throw fail(field, "has \(count) entries for \(itemCount) items")
        }
        for m in modalities where m.values.rows != itemCount {
            throw fail("modality '\(m.name)'", "has \(m.values.rows) rows for \(itemCount) items")
        }
        guard userOffsets.count == userCount + 1, userOffsets.first == 0, userOffsets.last == behaviourCount,
              zip(userOffsets, userOffsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw fail("userOffsets", "is not an increasing list from 0 to \(behaviourCount) with \(userCount + 1) entries")
        }
        guard behaviourTimes.count == behaviourCount, behaviourLabels.count == behaviourCount else {
            throw fail("behaviourTimes", "times/labels do not have one entry per behaviour")
        }
        if let bad = behaviourItems.firstIndex(where: { $0 < 0 || Int($0) >= itemCount }) {
            throw fail("behaviourItems", "behaviour \(bad) refers to item \(behaviourItems[bad]), outside 0..<\(itemCount)")
        }
        if let bad = itemCategories.firstIndex(where: { $0 < -1 || Int($0) >= categoryNames.count }) {
            throw fail("itemCategories", "item \(bad) has category \(itemCategories[bad]) but there are \(categoryNames.count)")
        }
        try validateAnnotations(fail)
        for u in 0..<userCount {
            let r = behaviours(of: u)
            if r.isEmpty {
                throw fail("userOffsets", "user '\(userIDs[u])' has no behaviours")
            }
            for i in r.dropFirst() where behaviourTimes[i] < behaviourTimes[i - 1] {
                throw fail("behaviourTimes", "user '\(userIDs[u])' is not in time order at behaviour \(i)")
            }
        }
    }

    private func validateAnnotations(_ fail: (String, String) -> InputError) throws {
        let a = itemAnnotations
        guard a.items.count == a.users.count, a.texts.count == a.users.count else {
            throw fail("itemAnnotations", "has \(a.users.count) users, \(a.items.count) items and \(a.texts.count) texts")
        }
        if let bad = a.users.firstIndex(where: { $0 < 0 || Int($0) >= userCount }) {
            throw fail("itemAnnotations", "annotation \(bad) was written by user \(a.users[bad]), outside 0..<\(userCount)")
        }
        if let bad = a.items.firstIndex(where: { $0 < 0 || Int($0) >= itemCount }) {
            throw fail("itemAnnotations", "annotation \(bad) is about item \(a.items[bad]), outside 0..<\(itemCount)")
        }
    }

    /// Maps external ids to internal indices.
    public func itemIndex() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: itemIDs.enumerated().map { ($1, $0) })
    }

    public func userIndex() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: userIDs.enumerated().map { ($1, $0) })
    }
}

/// Collects behaviours in any order and produces the columnar, per-user time-ordered layout.
public struct BehaviourTableBuilder {
    private var users: [String] = []
    private var userSlot: [String: Int] = [:]
    private var user: [Int32] = []
    private var item: [Int32] = []
    private var time: [Int64] = []
    private var label: [UInt8] = []

    public init() {}

    public mutating func add(user id: String, item itemIndex: Int, time t: Int64, labels: UInt8) {
        let u: Int
        if let s = userSlot[id] { u = s } else { u = users.count; userSlot[id] = u; users.append(id) }
        user.append(Int32(u))
        item.append(Int32(itemIndex))
        time.append(t)
        label.append(labels)
    }

    public var count: Int { item.count }

    /// Users in first-seen order; behaviours sorted by (time, arrival order) within each user.
    public func build() -> (userIDs: [String], offsets: [Int], items: [Int32], times: [Int64], labels: [UInt8]) {
        var counts = [Int](repeating: 0, count: users.count + 1)
        for u in user { counts[Int(u) + 1] += 1 }
        for i in 0..<users.count { counts[i + 1] += counts[i] }
        var order = [Int](repeating: 0, count: item.count)
        var next = counts
        for (i, u) in user.enumerated() { order[next[Int(u)]] = i; next[Int(u)] += 1 }
        for u in 0..<users.count {
            let r = counts[u]..<counts[u + 1]
            // Stable by construction: ties in time keep arrival order.
            let sorted = order[r].sorted { (time[$0], $0) < (time[$1], $1) }
            order.replaceSubrange(r, with: sorted)
        }
        return (users, counts, order.map { item[$0] }, order.map { time[$0] }, order.map { label[$0] })
    }
}
