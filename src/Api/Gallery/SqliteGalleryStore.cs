using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace AlexNet.Api.Gallery;

/// <summary>The gallery database cannot be used (it does not open, or it is not this service's): the start stops
/// with the path and the reason.</summary>
public sealed class GalleryUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The gallery in one SQLite file: WAL with synchronous=FULL, so a write is on disk when it is acknowledged. Each
/// row keeps the normalised copy of its image (the prepared ResizeSize square, as PNG) so that a new model can
/// re-embed it, and the fingerprint of the model its vector came from. One connection, one writer at a time.
/// </summary>
public sealed class SqliteGalleryStore : IGalleryStore
{
    readonly SqliteConnection _db;
    readonly Lock _lock = new();

    public SqliteGalleryStore(string path)
    {
        Path = path;
        _db = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,   // closing releases the file
        }.ToString());
    }

    /// <summary>Opens (or creates) the file and its table; throws <see cref="GalleryUnavailableException"/> naming the path.</summary>
    public void Open()
    {
        var path = Path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        try
        {
            _db.Open();
            JournalMode = Scalar("PRAGMA journal_mode=WAL;") as string ?? "?";
            Execute("""
                PRAGMA synchronous=FULL;
                PRAGMA busy_timeout=5000;
                CREATE TABLE IF NOT EXISTS images (
                    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused after a delete
                    label         TEXT,
                    note          TEXT,
                    created_utc   TEXT    NOT NULL,
                    sha256        TEXT    NOT NULL,                  -- of the uploaded bytes
                    width         INTEGER NOT NULL,                  -- of the upload, after orientation
                    height        INTEGER NOT NULL,
                    prepared_png  BLOB    NOT NULL,                  -- shorter side to resize_size, central square
                    prepared_size INTEGER NOT NULL,
                    thumbnail_png BLOB    NOT NULL,
                    model         TEXT    NOT NULL,                  -- fingerprint of the model behind features
                    features      BLOB    NOT NULL                   -- float32 little-endian, FC7
                );
                """);
            CheckSchema(path);
        }
        catch (SqliteException e)
        {
            _db.Dispose();
            throw new GalleryUnavailableException($"Gallery database {path} cannot be opened: {e.Message} (Gallery:DatabasePath).", e);
        }
        catch
        {
            _db.Dispose();
            throw;
        }
    }

    static readonly string[] Columns =
        ["id", "label", "note", "created_utc", "sha256", "width", "height", "prepared_png", "prepared_size", "thumbnail_png", "model", "features"];

    /// <summary>A file whose <c>images</c> table is someone else's is refused with the columns it lacks.</summary>
    void CheckSchema(string path)
    {
        using var cmd = Command("SELECT name FROM pragma_table_info('images');");
        using var r = cmd.ExecuteReader();
        var have = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (r.Read()) have.Add(r.GetString(0));
        var missing = Columns.Where(c => !have.Contains(c)).ToList();
        if (missing.Count > 0)
            throw new GalleryUnavailableException($"Gallery database {path} has a table 'images' that is not this service's (it lacks " +
                $"{string.Join(", ", missing)}). Point Gallery:DatabasePath at a file of this service's, or at a new one.");
    }

    public string Path { get; }
    public string Location => Path;
    /// <summary>"wal" unless the file system refused it.</summary>
    public string JournalMode { get; private set; } = "?";

    /// <summary>Inserts in one transaction; returns the new ids in order.</summary>
    public GalleryWrite Insert(IReadOnlyList<NewGalleryImage> images, DateTimeOffset createdUtc)
    {
        return new GalleryWrite(Writing(() =>
        {
            lock (_lock)
            {
                using var tx = _db.BeginTransaction();
                var ids = new long[images.Count];
                for (var i = 0; i < images.Count; i++)
                {
                    var m = images[i];
                    using var cmd = Command("""
                        INSERT INTO images (label, note, created_utc, sha256, width, height, prepared_png, prepared_size, thumbnail_png, model, features)
                        VALUES ($label, $note, $created, $sha, $w, $h, $prepared, $size, $thumb, $model, $features) RETURNING id;
                        """, tx);
                    cmd.Parameters.AddWithValue("$label", (object?)m.Label ?? DBNull.Value);
                    cmd.Parameters.AddWithValue("$note", (object?)m.Note ?? DBNull.Value);
                    cmd.Parameters.AddWithValue("$created", createdUtc.ToString("O"));
                    cmd.Parameters.AddWithValue("$sha", m.Sha256);
                    cmd.Parameters.AddWithValue("$w", m.Width);
                    cmd.Parameters.AddWithValue("$h", m.Height);
                    cmd.Parameters.AddWithValue("$prepared", m.PreparedPng);
                    cmd.Parameters.AddWithValue("$size", m.PreparedSize);
                    cmd.Parameters.AddWithValue("$thumb", m.ThumbnailPng);
                    cmd.Parameters.AddWithValue("$model", m.Fingerprint);
                    cmd.Parameters.AddWithValue("$features", ToBytes(m.Features));
                    ids[i] = (long)cmd.ExecuteScalar()!;
                }
                tx.Commit();
                return ids;
            }
        }), 0);
    }

    /// <summary>Every row, oldest first. A row that does not read as this service writes it (a wrong type, a NULL, a
    /// date that does not parse, a vector whose bytes are not whole floats) is left out and passed to
    /// <paramref name="bad"/> with its id (or rowid) and what is wrong: one bad row never stops the service.</summary>
    public GallerySnapshot ReadAll(string fingerprint, Action<long, string>? bad = null)
    {
        lock (_lock)
        {
            using var cmd = Command("SELECT rowid, id, label, note, created_utc, sha256, width, height, model, features FROM images ORDER BY rowid;");
            using var r = cmd.ExecuteReader();
            var rows = new List<GalleryRecord>();
            while (r.Read())
            {
                try
                {
                    var features = r.GetValue(9) as byte[] ?? throw new FormatException("features is not a BLOB");
                    if (features.Length % sizeof(float) != 0) throw new FormatException($"features has {features.Length} bytes, not whole floats");
                    rows.Add(new GalleryRecord(r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                        DateTimeOffset.Parse(r.GetString(4), CultureInfo.InvariantCulture), r.GetString(5), r.GetInt32(6), r.GetInt32(7),
                        r.GetString(8), FromBytes(features)));
                }
                catch (Exception e) when (e is InvalidCastException or FormatException or InvalidOperationException or OverflowException)
                {
                    bad?.Invoke(r.GetInt64(0), e.Message);
                }
            }
            return new GallerySnapshot(rows, 0);
        }
    }

    public (byte[] Png, int Size)? ReadPrepared(long id)
    {
        lock (_lock)
        {
            using var cmd = Command("SELECT prepared_png, prepared_size FROM images WHERE id = $id;");
            cmd.Parameters.AddWithValue("$id", id);
            using var r = cmd.ExecuteReader();
            return r.Read() ? ((byte[])r.GetValue(0), r.GetInt32(1)) : null;
        }
    }

    public byte[]? ReadThumbnail(long id)
    {
        lock (_lock)
        {
            using var cmd = Command("SELECT thumbnail_png FROM images WHERE id = $id;");
            cmd.Parameters.AddWithValue("$id", id);
            return cmd.ExecuteScalar() as byte[];
        }
    }

    /// <summary>One vector a row: rows of another model (or another width) get the new model's vector in place.</summary>
    public (int Claimed, int Left) EmbedMissing(string fingerprint, int dim, int batch, IReadOnlyCollection<long> skip, Embedder embed)
    {
        List<StoredCopy> copies = [];
        lock (_lock)
        {
            using var cmd = Command("SELECT id, prepared_png, prepared_size FROM images WHERE model <> $model OR length(features) <> $bytes ORDER BY id;");
            cmd.Parameters.AddWithValue("$model", fingerprint);
            cmd.Parameters.AddWithValue("$bytes", dim * sizeof(float));
            using var r = cmd.ExecuteReader();
            var left = 0;
            while (r.Read())
            {
                var id = r.GetInt64(0);
                if (skip.Contains(id)) continue;
                if (copies.Count < batch && r.GetValue(1) is byte[] png) copies.Add(new StoredCopy(id, png, r.GetInt32(2)));
                else left++;
            }
            if (copies.Count == 0) return (0, left);
            var vectors = embed(copies);
            Writing(() =>
            {
                using var tx = _db.BeginTransaction();
                foreach (var (id, features) in vectors)
                {
                    using var update = Command("UPDATE images SET model = $model, features = $features WHERE id = $id;", tx);
                    update.Parameters.AddWithValue("$model", fingerprint);
                    update.Parameters.AddWithValue("$features", ToBytes(features));
                    update.Parameters.AddWithValue("$id", id);
                    update.ExecuteNonQuery();
                }
                tx.Commit();
                return 0;
            });
            return (copies.Count, left);
        }
    }

    public long? Delete(long id)
    {
        return Writing(() =>
        {
            lock (_lock)
            {
                using var cmd = Command("DELETE FROM images WHERE id = $id;");
                cmd.Parameters.AddWithValue("$id", id);
                return cmd.ExecuteNonQuery() == 1 ? 0L : (long?)null;
            }
        });
    }

    public void Dispose()
    {
        lock (_lock) _db.Dispose();
    }

    /// <summary>A write; SQLITE_FULL (or a write I/O error, which a full disk also gives) becomes
    /// <see cref="GalleryStoreFullException"/>. The transaction is rolled back: nothing of it is stored.</summary>
    T Writing<T>(Func<T> write)
    {
        try
        {
            return write();
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 13 /* SQLITE_FULL */ || e.SqliteExtendedErrorCode == 4874 /* IOERR_WRITE */)
        {
            throw new GalleryStoreFullException($"the gallery database's disk is full ({e.Message})", e);
        }
    }

    SqliteCommand Command(string sql, SqliteTransaction? tx = null)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd;
    }

    void Execute(string sql)
    {
        using var cmd = Command(sql);
        cmd.ExecuteNonQuery();
    }

    object? Scalar(string sql)
    {
        using var cmd = Command(sql);
        return cmd.ExecuteScalar();
    }

    // float32 little-endian, the layout of every platform .NET runs on here.
    static byte[] ToBytes(float[] v) => MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
    static float[] FromBytes(byte[] b) => MemoryMarshal.Cast<byte, float>(b).ToArray();
}
