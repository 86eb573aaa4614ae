/// The project's version, printed by `miss --version` and written into every file it makes.
public enum MISSVersion {
    public static let string = "0.1.0"
}
