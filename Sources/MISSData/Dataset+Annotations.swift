/// Text that users wrote about items (MovieLens tags), one entry per (writer, item, text), in the
/// order the source listed them. Columnar, like the behaviours.
///
/// Kept apart from `Dataset.itemTexts` because the writers are users: an evaluation user's tag can
/// name what that user watches next, so the text a model reads may only hold the training users'.
public struct ItemAnnotations: Sendable, Equatable {
    /// Internal index of the user who wrote each annotation.
    public var users: [Int32]
    /// Internal index of the item each annotation is about.
    public var items: [Int32]
    public var texts: [String]

    public init(users: [Int32] = [], items: [Int32] = [], texts: [String] = []) {
        self.users = users
        self.items = items
        self.texts = texts
    }

    public var count: Int { texts.count }
    public var isEmpty: Bool { texts.isEmpty }

    public mutating func append(user: Int, item: Int, text: String) {
        users.append(Int32(user))
        items.append(Int32(item))
        texts.append(text)
    }

    /// Indices of the annotations written by users for whom `includes` is true (indexed by user).
    public func written(by includes: [Bool]) -> [Int] {
        (0..<count).filter { includes[Int(users[$0])] }
    }
}

extension Dataset {
    /// The text the text encoder reads for one split: each item's own text (`itemTexts`), then the
    /// annotations that `trainingUsers` wrote about it, in source order, each distinct text once
    /// (case-insensitively, lowercased), all joined by ". ". Annotations by any other user (the
    /// split's validation and test users) never appear.
    public func contentTexts(trainingUsers: some Sequence<Int>) -> [String] {
        var perItem = [[String]](repeating: [], count: itemCount)
        for a in itemAnnotations.written(by: userMask(trainingUsers)) {
            let text = itemAnnotations.texts[a].lowercased()
            let item = Int(itemAnnotations.items[a])
            if !perItem[item].contains(text) { perItem[item].append(text) }
        }
        return (0..<itemCount).map { i in
            ([itemTexts[i]] + perItem[i]).filter { !$0.isEmpty }.joined(separator: ". ")
        }
    }

    /// How many annotations `users` wrote, and how many distinct users of them wrote any.
    public func annotationCounts(writtenBy users: some Sequence<Int>) -> (annotations: Int, writers: Int) {
        let kept = itemAnnotations.written(by: userMask(users))
        return (kept.count, Set(kept.map { itemAnnotations.users[$0] }).count)
    }

    private func userMask(_ users: some Sequence<Int>) -> [Bool] {
        var mask = [Bool](repeating: false, count: userCount)
        for u in users { mask[u] = true }
        return mask
    }
}
