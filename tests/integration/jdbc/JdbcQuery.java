// One SQL statement through the Trino JDBC driver, rows printed as TSV on stdout.
//
// Run with Java's source launcher (no build step), the driver jar on the class path:
//   java -cp trino-jdbc-476.jar tests/integration/jdbc/JdbcQuery.java <jdbc url> <user> <sql>
// e.g. jdbc:trino://127.0.0.1:8081/delta/serving. Values print as ResultSet.getString gives them;
// SQL NULL prints as \N. A failed statement prints the driver's message on stderr and exits 1.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcQuery {
    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: JdbcQuery <jdbc url> <user> <sql>");
            System.exit(2);
        }
        Properties properties = new Properties();
        properties.setProperty("user", args[1]);
        StringBuilder out = new StringBuilder();
        try (Connection connection = DriverManager.getConnection(args[0], properties);
                Statement statement = connection.createStatement();
                ResultSet rows = statement.executeQuery(args[2])) {
            int columns = rows.getMetaData().getColumnCount();
            while (rows.next()) {
                for (int i = 1; i <= columns; i++) {
                    if (i > 1) {
                        out.append('\t');
                    }
                    String value = rows.getString(i);
                    out.append(value == null ? "\\N" : value);
                }
                out.append('\n');
            }
        }
        catch (SQLException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        }
        System.out.print(out);
        System.out.flush();
    }
}
