// swift-tools-version: 6.1
import PackageDescription
import Foundation

// On an x86-64 Linux machine with AVX2 and FMA (every x86 server since 2013, and this project's
// machines), let the compiler use them for Swift's SIMD types: the top-K scans and the 8-lane dots run
// 1.3–1.5× faster. Results are bit-identical (Swift does not contract a·b + c into FMA). Anywhere else
// the baseline instruction set.
let cpuSettings: [SwiftSetting] = {
    #if os(Linux) && arch(x86_64)
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
       Set(line.split(separator: " ")).isSuperset(of: ["avx2", "fma"]) {
        return [.unsafeFlags(["-target-cpu", "haswell"])]
    }
    #endif
    return []
}()

let package = Package(
    name: "MISSExplorer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "miss", targets: ["miss"]),
        .library(name: "MISSCore", targets: ["MISSCore"]),
        .library(name: "MISSData", targets: ["MISSData"]),
        .library(name: "MISSModel", targets: ["MISSModel"]),
        .library(name: "MISSExplorer", targets: ["MISSExplorer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // The only places that see C: OpenBLAS, ncursesw, and one compiler builtin (a prefetch hint).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CNCurses", path: "Sources/CNCurses"),
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "MISSCore", dependencies: ["CBLAS"], swiftSettings: cpuSettings),
        .target(name: "MISSData", dependencies: ["MISSCore"], swiftSettings: cpuSettings),
        .target(name: "MISSModel", dependencies: ["MISSCore", "MISSData", "CPrefetch"], swiftSettings: cpuSettings),
        .target(name: "MISSExplorer", dependencies: ["MISSCore", "MISSData", "MISSModel"], swiftSettings: cpuSettings),
        .executableTarget(
            name: "miss",
            dependencies: [
                "MISSCore",
                "MISSData",
                "MISSModel",
                "MISSExplorer",
                "CNCurses",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuSettings
        ),
        .target(name: "MISSTestSupport", dependencies: ["MISSCore"], path: "Tests/MISSTestSupport"),
        .testTarget(name: "MISSCoreTests", dependencies: ["MISSCore", "MISSTestSupport"]),
        .testTarget(name: "MISSDataTests", dependencies: ["MISSData", "MISSTestSupport"]),
        .testTarget(name: "MISSModelTests", dependencies: ["MISSModel", "MISSTestSupport"]),
        .testTarget(name: "MISSExplorerTests", dependencies: ["MISSExplorer", "MISSModel", "MISSData", "MISSCore", "MISSTestSupport"],
                    exclude: ["Golden"]),  // golden screens are read from the source tree (#filePath)
        .testTarget(name: "EndToEndTests", dependencies: ["MISSCore", "MISSTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
