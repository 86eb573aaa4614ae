import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData

@Suite struct ItemAnnotationTests {
    /// Two items, three users (one behaviour each); user 1's tag must stay out of a split that trains on 0 and 2.
    func tagged() -> Dataset {
        var a = ItemAnnotations()
        a.append(user: 0, item: 0, text: "Pacino")
        a.append(user: 1, item: 0, text: "spoiler ending")
        a.append(user: 0, item: 0, text: "pacino")  // the same tag in other case: once
        a.append(user: 2, item: 1, text: "Slow")
        a.append(user: 2, item: 0, text: "long")
        return Dataset(name: "t", objectives: ["rated"], itemIDs: ["i0", "i1"], itemTitles: ["Heat (1995)", ""],
                       itemTexts: ["Heat (1995). Action Crime", ""], itemCategories: [-1, -1], categoryNames: [],
                       modalities: [], itemAnnotations: a, userIDs: ["u0", "u1", "u2"], userOffsets: [0, 1, 2, 3],
                       behaviourItems: [0, 1, 0], behaviourTimes: [1, 1, 1], behaviourLabels: [1, 1, 1])
    }

    @Test func contentTextsAddOnlyTheTrainingUsersTags() throws {
        let d = tagged()
        try d.validate(source: "t")
        #expect(d.contentTexts(trainingUsers: [0, 2]) == ["Heat (1995). Action Crime. pacino. long", "slow"])
        #expect(d.contentTexts(trainingUsers: [1]) == ["Heat (1995). Action Crime. spoiler ending", ""])
        #expect(d.contentTexts(trainingUsers: []) == d.itemTexts)
        #expect(d.contentTexts(trainingUsers: 0..<3) == ["Heat (1995). Action Crime. pacino. spoiler ending. long", "slow"])
    }

    @Test func annotationCountsCountTagsAndWriters() {
        let d = tagged()
        #expect(d.annotationCounts(writtenBy: [0, 2]) == (annotations: 4, writers: 2))
        #expect(d.annotationCounts(writtenBy: [1]) == (annotations: 1, writers: 1))
        #expect(d.annotationCounts(writtenBy: []) == (annotations: 0, writers: 0))
    }

    @Test func validationCatchesAnnotationsOutsideTheDataset() {
        var d = tagged()
        d.itemAnnotations.users[1] = 3
        let e1 = inputError { try d.validate(source: "x") }
        #expect(e1?.location == "field 'itemAnnotations'" && e1?.problem.contains("user 3, outside 0..<3") == true)
        var e = tagged()
        e.itemAnnotations.items.removeLast()
        #expect(inputError { try e.validate(source: "x") }?.problem.contains("4 items and 5 texts") == true)
    }

    @Test func cacheRoundTripKeepsAnnotationsAsVersionTwo() throws {
        var d = tinyWorld()
        d.itemAnnotations.append(user: 3, item: 17, text: "a tag, with a comma")
        d.itemAnnotations.append(user: 0, item: 2, text: "ünïcode")
        let url = try temporaryDirectory().appendingPathComponent("w.missdata")
        try d.write(to: url)
        #expect(try SafetensorsFile(path: url.path).metadata["version"] == "2")
        let e = try Dataset.load(from: url)
        #expect(e.itemAnnotations == d.itemAnnotations)
        #expect(e.itemTexts == d.itemTexts && e.behaviourItems == d.behaviourItems)
    }

    /// Without annotations the layout is version 1's, byte for byte (SampleDataTests checks the committed file).
    @Test func annotationFreeDatasetsAreWrittenAsVersionOne() throws {
        let url = try temporaryDirectory().appendingPathComponent("w.missdata")
        try tinyWorld().write(to: url)
        let f = try SafetensorsFile(path: url.path)
        #expect(f.metadata["version"] == "1")
        #expect(!f.names.contains { $0.hasPrefix("annotation.") })
    }

    /// SampleData/world.missdata was written before annotations existed.
    @Test func previousVersionFileLoadsWithoutAnnotations() throws {
        let url = Paths.sampleData.appendingPathComponent("world.missdata")
        #expect(try SafetensorsFile(path: url.path).metadata["version"] == "1")
        let d = try Dataset.load(from: url)
        #expect(d.itemAnnotations.isEmpty && d.itemCount == 8000)
        #expect(d.contentTexts(trainingUsers: 0..<d.userCount) == d.itemTexts)
    }

    @Test func versionTwoFileWithoutAnnotationTensorsNamesTheTensor() throws {
        // A version-1 file relabelled as version 2: the annotation tensors that version promises are missing.
        let v1 = tinyWorld().cacheData()
        let headerLength = Int(v1.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = String(decoding: v1[8..<(8 + headerLength)], as: UTF8.self)
        let relabelled = header.replacingOccurrences(of: #""version":"1""#, with: #""version":"2""#)
        #expect(relabelled != header && relabelled.utf8.count == headerLength)
        let url = try temporaryDirectory().appendingPathComponent("relabelled.missdata")
        try (v1.prefix(8) + Data(relabelled.utf8) + v1.dropFirst(8 + headerLength)).write(to: url)
        let e = inputError { _ = try Dataset.load(from: url) }
        #expect(e?.file == url.path && e?.location == "tensor 'annotation.users'", "\(String(describing: e))")
    }
}
