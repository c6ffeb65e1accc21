using System.Runtime.InteropServices;
using Npgsql;
using NpgsqlTypes;

namespace AlexNet.Api.Gallery;

/// <summary>
/// The gallery in PostgreSQL, shared by several replicas (Gallery:Store=Postgres, ConnectionStrings:Gallery).
/// <para>Every write takes the next numbers of one counter row first (<c>gallery_counter</c>): the row lock is held until
/// the commit, so writers commit in sequence order and a reader that sees change n has seen every change before it
/// (no gaps). Each change is a row of <c>gallery_changes</c> and a <c>NOTIFY alexnet_gallery</c> sent at the commit;
/// a replica's <see cref="GalleryFollower"/> reads the changes after the last it applied. Commits are synchronous
/// (<c>synchronous_commit</c> is set on for each transaction), so an acknowledged write survives a crash of the
/// server's host.</para>
/// <para>Vectors are kept per model fingerprint (<c>gallery_vectors</c>): replicas of two models (a rolling update)
/// serve side by side, each searching only its own model's vectors. A delete is a tombstone (<c>deleted_seq</c>; the
/// pictures and vectors are dropped). The schema is created and migrated at start under an advisory lock, so replicas
/// that start together take turns.</para>
/// </summary>
public sealed class PostgresGalleryStore : ISharedGalleryStore
{
    const string Channel = "alexnet_gallery";
    const long SchemaLock = 0x416c_6578_4e65_7431;   // "AlexNet1": pg_advisory_xact_lock key for migrations

    /// <summary>Migrations in order; the schema's version is how many have run. Never edit one that shipped: add one.</summary>
    static readonly string[] Migrations =
    [
        """
        CREATE TABLE gallery_counter (
            one  boolean PRIMARY KEY DEFAULT true CHECK (one),
            seq  bigint  NOT NULL                                  -- the last change sequence handed out
        );
        INSERT INTO gallery_counter (one, seq) VALUES (true, 0);
        CREATE TABLE gallery_images (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- never reused after a delete
            label         text,
            note          text,
            created_utc   timestamptz NOT NULL,
            sha256        text        NOT NULL,                  -- of the uploaded bytes
            width         integer     NOT NULL,                  -- of the upload, after orientation
            height        integer     NOT NULL,
            prepared_png  bytea       NOT NULL,                  -- shorter side to prepared_size, central square (emptied on delete)
            prepared_size integer     NOT NULL,
            thumbnail_png bytea       NOT NULL,
            added_seq     bigint      NOT NULL,
            deleted_seq   bigint                                 -- the tombstone: set once, never cleared
        );
        CREATE TABLE gallery_vectors (
            image_id  bigint NOT NULL REFERENCES gallery_images (id),
            model     text   NOT NULL,                           -- fingerprint of the model behind features
            features  bytea  NOT NULL,                           -- float32 little-endian, FC7
            seq       bigint NOT NULL,
            PRIMARY KEY (image_id, model)
        );
        -- Floats and PNGs do not compress: stored out of line as they are, no pglz on every write and read.
        ALTER TABLE gallery_vectors ALTER COLUMN features SET STORAGE EXTERNAL;
        ALTER TABLE gallery_images ALTER COLUMN prepared_png SET STORAGE EXTERNAL, ALTER COLUMN thumbnail_png SET STORAGE EXTERNAL;
        CREATE TABLE gallery_changes (
            seq       bigint PRIMARY KEY,
            kind      "char" NOT NULL,                           -- a: added, v: embedded (for model), d: deleted
            image_id  bigint NOT NULL,
            model     text
        );
        """,
    ];

    readonly NpgsqlDataSource _source;
    NpgsqlConnection? _listener;

    public PostgresGalleryStore(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new GalleryUnavailableException($"ConnectionStrings:Gallery does not read as a PostgreSQL connection string: {e.Message}", e);
        }
        if (!connectionString.Contains("Timeout", StringComparison.OrdinalIgnoreCase)) builder.Timeout = 5;   // connecting
        if (!connectionString.Contains("Command Timeout", StringComparison.OrdinalIgnoreCase)) builder.CommandTimeout = 30;
        if (!connectionString.Contains("Keepalive", StringComparison.OrdinalIgnoreCase)) builder.KeepAlive = 5;
        builder.ApplicationName ??= "alexnet-api";
        Location = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
        _source = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    public string Location { get; }

    public void Open() => Run(conn =>
    {
        using var tx = conn.BeginTransaction();
        Execute(conn, tx, $"SELECT pg_advisory_xact_lock({SchemaLock});");
        Execute(conn, tx, "CREATE TABLE IF NOT EXISTS gallery_schema (version integer NOT NULL); " +
            "INSERT INTO gallery_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM gallery_schema);");
        var version = Convert.ToInt32(Scalar(conn, tx, "SELECT version FROM gallery_schema;"));
        if (version > Migrations.Length)
            throw new GalleryUnavailableException($"Gallery database {Location} has schema version {version}, newer than this service's " +
                $"{Migrations.Length}: a newer release wrote it. Run that release, or point ConnectionStrings:Gallery at another database.");
        for (var v = version; v < Migrations.Length; v++) Execute(conn, tx, Migrations[v]);
        Execute(conn, tx, $"UPDATE gallery_schema SET version = {Migrations.Length};");
        tx.Commit();
        return 0;
    });

    public GalleryWrite Insert(IReadOnlyList<NewGalleryImage> images, DateTimeOffset createdUtc) => Run(conn =>
    {
        using var tx = Begin(conn);
        var first = Take(conn, tx, images.Count);
        var ids = new long[images.Count];
        for (var i = 0; i < images.Count; i++)
        {
            var m = images[i];
            using var cmd = Command(conn, tx, """
                INSERT INTO gallery_images (label, note, created_utc, sha256, width, height, prepared_png, prepared_size, thumbnail_png, added_seq)
                VALUES (@label, @note, @created, @sha, @w, @h, @prepared, @size, @thumb, @seq) RETURNING id;
                """);
            cmd.Parameters.AddWithValue("label", NpgsqlDbType.Text, (object?)m.Label ?? DBNull.Value);
            cmd.Parameters.AddWithValue("note", NpgsqlDbType.Text, (object?)m.Note ?? DBNull.Value);
            cmd.Parameters.AddWithValue("created", createdUtc.UtcDateTime);
            cmd.Parameters.AddWithValue("sha", m.Sha256);
            cmd.Parameters.AddWithValue("w", m.Width);
            cmd.Parameters.AddWithValue("h", m.Height);
            cmd.Parameters.AddWithValue("prepared", m.PreparedPng);
            cmd.Parameters.AddWithValue("size", m.PreparedSize);
            cmd.Parameters.AddWithValue("thumb", m.ThumbnailPng);
            cmd.Parameters.AddWithValue("seq", first + i);
            ids[i] = (long)cmd.ExecuteScalar()!;
            AddVector(conn, tx, ids[i], m.Fingerprint, m.Features, first + i);
            AddChange(conn, tx, first + i, 'a', ids[i], m.Fingerprint);
        }
        var last = first + images.Count - 1;
        Notify(conn, tx, last);
        tx.Commit();
        return new GalleryWrite(ids, last);
    });

    public GallerySnapshot ReadAll(string fingerprint, Action<long, string>? bad = null) => Run(conn =>
    {
        using var tx = conn.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);   // the rows and the sequence: one snapshot
        var seq = (long)Scalar(conn, tx, "SELECT seq FROM gallery_counter;")!;
        using var cmd = Command(conn, tx, """
            SELECT i.id, i.label, i.note, i.created_utc, i.sha256, i.width, i.height, v.features
            FROM gallery_images i LEFT JOIN gallery_vectors v ON v.image_id = i.id AND v.model = @model
            WHERE i.deleted_seq IS NULL ORDER BY i.id;
            """);
        cmd.Parameters.AddWithValue("model", fingerprint);
        var rows = new List<GalleryRecord>();
        using (var r = cmd.ExecuteReader())
            while (r.Read())
            {
                var features = r.IsDBNull(7) ? null : (byte[])r.GetValue(7);
                if (features is not null && features.Length % sizeof(float) != 0)
                {
                    bad?.Invoke(r.GetInt64(0), $"features has {features.Length} bytes, not whole floats");
                    features = null;   // treated as missing: embedded again
                }
                rows.Add(Record(r, fingerprint, features));
            }
        tx.Commit();
        return new GallerySnapshot(rows, seq);
    });

    public (List<GalleryChange> Changes, long Through) ReadChanges(long after, string fingerprint, int max) => Run(conn =>
    {
        using var cmd = Command(conn, null, """
            SELECT i.id, i.label, i.note, i.created_utc, i.sha256, i.width, i.height, v.features, c.seq, c.kind, c.model, i.deleted_seq
            FROM gallery_changes c JOIN gallery_images i ON i.id = c.image_id
            LEFT JOIN gallery_vectors v ON v.image_id = c.image_id AND v.model = @model
            WHERE c.seq > @after ORDER BY c.seq LIMIT @max;
            """);
        cmd.Parameters.AddWithValue("model", fingerprint);
        cmd.Parameters.AddWithValue("after", after);
        cmd.Parameters.AddWithValue("max", max);
        var changes = new List<GalleryChange>();
        var through = after;
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            through = r.GetInt64(8);
            var id = r.GetInt64(0);
            var features = r.IsDBNull(7) ? null : (byte[])r.GetValue(7);
            if (features is not null && features.Length % sizeof(float) != 0) features = null;
            var live = r.IsDBNull(11);
            switch (r.GetChar(9))
            {
                case 'a':
                    changes.Add(new GalleryChange(through, GalleryChangeKind.Added, id, live ? Record(r, fingerprint, features) : null,
                        features is null ? null : FromBytes(features)));
                    break;
                case 'v' when r.GetString(10) == fingerprint:
                    changes.Add(new GalleryChange(through, GalleryChangeKind.Embedded, id, null, features is null ? null : FromBytes(features)));
                    break;
                case 'd':
                    changes.Add(new GalleryChange(through, GalleryChangeKind.Deleted, id, null, null));
                    break;
            }
        }
        return (changes, through);
    });

    public async Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            if (_listener is null)
            {
                var conn = await _source.OpenConnectionAsync(ct);
                try
                {
                    await using var listen = new NpgsqlCommand($"LISTEN {Channel};", conn);
                    await listen.ExecuteNonQueryAsync(ct);
                }
                catch
                {
                    await conn.DisposeAsync();
                    throw;
                }
                _listener = conn;
            }
            return await _listener.WaitAsync(timeout, ct);
        }
        catch (Exception e) when (Unreachable(e))
        {
            var lost = _listener;
            _listener = null;
            if (lost is not null) await lost.DisposeAsync();
            _source.Clear();
            throw new GalleryStoreUnavailableException(Say(e), e);
        }
    }

    public (byte[] Png, int Size)? ReadPrepared(long id) => Run(conn =>
    {
        using var cmd = Command(conn, null, "SELECT prepared_png, prepared_size FROM gallery_images WHERE id = @id AND deleted_seq IS NULL;");
        cmd.Parameters.AddWithValue("id", id);
        using var r = cmd.ExecuteReader();
        return r.Read() ? ((byte[])r.GetValue(0), r.GetInt32(1)) : ((byte[], int)?)null;
    });

    public byte[]? ReadThumbnail(long id) => Run(conn =>
    {
        using var cmd = Command(conn, null, "SELECT thumbnail_png FROM gallery_images WHERE id = @id AND deleted_seq IS NULL;");
        cmd.Parameters.AddWithValue("id", id);
        return cmd.ExecuteScalar() as byte[];
    });

    public (int Claimed, int Left) EmbedMissing(string fingerprint, int dim, int batch, IReadOnlyCollection<long> skip, Embedder embed) => Run(conn =>
    {
        var skipped = skip.ToArray();
        const string Missing = """
            FROM gallery_images i
            WHERE i.deleted_seq IS NULL AND NOT (i.id = ANY (@skip))
              AND NOT EXISTS (SELECT 1 FROM gallery_vectors v WHERE v.image_id = i.id AND v.model = @model)
            """;
        var claimed = 0;
        using (var tx = Begin(conn))
        {
            // Rows another replica is embedding are locked by it: passed over here, and counted as left below.
            using var cmd = Command(conn, tx, $"SELECT i.id, i.prepared_png, i.prepared_size {Missing} ORDER BY i.id LIMIT @batch FOR NO KEY UPDATE SKIP LOCKED;");
            cmd.Parameters.AddWithValue("skip", skipped);
            cmd.Parameters.AddWithValue("model", fingerprint);
            cmd.Parameters.AddWithValue("batch", batch);
            var copies = new List<StoredCopy>();
            using (var r = cmd.ExecuteReader())
                while (r.Read()) copies.Add(new StoredCopy(r.GetInt64(0), (byte[])r.GetValue(1), r.GetInt32(2)));
            claimed = copies.Count;
            if (claimed > 0)
            {
                var vectors = embed(copies);
                if (vectors.Count > 0)
                {
                    var first = Take(conn, tx, vectors.Count);
                    for (var i = 0; i < vectors.Count; i++)
                    {
                        AddVector(conn, tx, vectors[i].Id, fingerprint, vectors[i].Features, first + i);
                        AddChange(conn, tx, first + i, 'v', vectors[i].Id, fingerprint);
                    }
                    Notify(conn, tx, first + vectors.Count - 1);
                }
            }
            tx.Commit();
        }
        using var count = Command(conn, null, $"SELECT count(*) {Missing};");
        count.Parameters.AddWithValue("skip", skipped);
        count.Parameters.AddWithValue("model", fingerprint);
        return (claimed, (int)(long)count.ExecuteScalar()!);
    });

    public long? Delete(long id) => Run(conn =>
    {
        using var tx = Begin(conn);
        using (var find = Command(conn, tx, "SELECT 1 FROM gallery_images WHERE id = @id AND deleted_seq IS NULL FOR UPDATE;"))
        {
            find.Parameters.AddWithValue("id", id);
            if (find.ExecuteScalar() is null) return (long?)null;
        }
        var seq = Take(conn, tx, 1);
        using (var tomb = Command(conn, tx, """
            UPDATE gallery_images SET deleted_seq = @seq, prepared_png = '', thumbnail_png = '' WHERE id = @id;
            DELETE FROM gallery_vectors WHERE image_id = @id;
            """))
        {
            tomb.Parameters.AddWithValue("seq", seq);
            tomb.Parameters.AddWithValue("id", id);
            tomb.ExecuteNonQuery();
        }
        AddChange(conn, tx, seq, 'd', id, null);
        Notify(conn, tx, seq);
        tx.Commit();
        return seq;
    });

    /// <summary>A write transaction whose commit waits for the server's WAL flush, whatever the server's default.</summary>
    static NpgsqlTransaction Begin(NpgsqlConnection conn)
    {
        var tx = conn.BeginTransaction();
        Execute(conn, tx, "SET LOCAL synchronous_commit = on;");
        return tx;
    }

    /// <summary>Hands out the next <paramref name="n"/> change sequences; returns the first. Holds the counter row until
    /// the commit, so sequences commit in order.</summary>
    static long Take(NpgsqlConnection conn, NpgsqlTransaction tx, int n)
    {
        using var cmd = Command(conn, tx, "UPDATE gallery_counter SET seq = seq + @n RETURNING seq;");
        cmd.Parameters.AddWithValue("n", (long)n);
        return (long)cmd.ExecuteScalar()! - n + 1;
    }

    static void AddVector(NpgsqlConnection conn, NpgsqlTransaction tx, long id, string fingerprint, float[] features, long seq)
    {
        using var cmd = Command(conn, tx, """
            INSERT INTO gallery_vectors (image_id, model, features, seq) VALUES (@id, @model, @features, @seq)
            ON CONFLICT (image_id, model) DO UPDATE SET features = EXCLUDED.features, seq = EXCLUDED.seq;
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("model", fingerprint);
        cmd.Parameters.AddWithValue("features", MemoryMarshal.AsBytes(features.AsSpan()).ToArray());
        cmd.Parameters.AddWithValue("seq", seq);
        cmd.ExecuteNonQuery();
    }

    static void AddChange(NpgsqlConnection conn, NpgsqlTransaction tx, long seq, char kind, long id, string? fingerprint)
    {
        using var cmd = Command(conn, tx, "INSERT INTO gallery_changes (seq, kind, image_id, model) VALUES (@seq, @kind, @id, @model);");
        cmd.Parameters.AddWithValue("seq", seq);
        cmd.Parameters.AddWithValue("kind", NpgsqlDbType.InternalChar, kind);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("model", NpgsqlDbType.Text, (object?)fingerprint ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    /// <summary>Sent when the transaction commits, not before.</summary>
    static void Notify(NpgsqlConnection conn, NpgsqlTransaction tx, long seq) => Execute(conn, tx, $"SELECT pg_notify('{Channel}', '{seq}');");

    static GalleryRecord Record(NpgsqlDataReader r, string fingerprint, byte[]? features) => new(r.GetInt64(0),
        r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2),
        new DateTimeOffset(DateTime.SpecifyKind(r.GetDateTime(3), DateTimeKind.Utc)), r.GetString(4), r.GetInt32(5), r.GetInt32(6),
        features is null ? "" : fingerprint, features is null ? [] : FromBytes(features));

    /// <summary>One pooled connection for <paramref name="work"/>. A server that cannot be reached (or is shutting down,
    /// starting or out of connections) is <see cref="GalleryStoreUnavailableException"/>; a full disk
    /// <see cref="GalleryStoreFullException"/>. Either way the transaction did not commit.</summary>
    T Run<T>(Func<NpgsqlConnection, T> work)
    {
        try
        {
            using var conn = _source.OpenConnection();
            return work(conn);
        }
        catch (PostgresException e) when (e.SqlState is "53100")   // disk_full
        {
            throw new GalleryStoreFullException($"the gallery database's disk is full ({e.MessageText})", e);
        }
        catch (Exception e) when (Unreachable(e))
        {
            _source.Clear();   // pooled connections to a restarted server are dead: open fresh ones next time
            throw new GalleryStoreUnavailableException(Say(e), e);
        }
    }

    /// <summary>Connection failures, timeouts and the server going away (SQLSTATE classes 08, 57P, 53).</summary>
    static bool Unreachable(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal)
            || p.SqlState.StartsWith("53", StringComparison.Ordinal),
        NpgsqlException or TimeoutException or System.Net.Sockets.SocketException => true,
        InvalidOperationException when e.InnerException is NpgsqlException => true,
        _ => false,
    };

    string Say(Exception e) => $"the gallery database {Location} cannot be reached ({(e.InnerException ?? e).Message.TrimEnd('.')})";

    static NpgsqlCommand Command(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql) => new(sql, conn, tx);

    static void Execute(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        using var cmd = Command(conn, tx, sql);
        cmd.ExecuteNonQuery();
    }

    static object? Scalar(NpgsqlConnection conn, NpgsqlTransaction tx, string sql)
    {
        using var cmd = Command(conn, tx, sql);
        return cmd.ExecuteScalar();
    }

    static float[] FromBytes(byte[] b) => MemoryMarshal.Cast<byte, float>(b).ToArray();

    public void Dispose()
    {
        _listener?.Dispose();
        _source.Dispose();
    }
}
