// Weakens one symbol-version requirement of an ELF64 shared library, so the dynamic loader accepts it on a system
// whose library lacks that version. Used by build/TorchSharpNative.targets (as an MSBuild inline task) to make
// TorchSharp 0.107's libLibTorchSharp.so load on Debian 12 / Ubuntu 22.04, whose libstdc++ stops at GLIBCXX_3.4.30.
// Facts: the file asks for GLIBCXX_3.4.32 for exactly one symbol, _ZSt21ios_base_library_initv, an anchor that GCC 13's
// <iostream> emits and that nothing calls. Setting VER_FLG_WEAK (2) on that Vernaux entry makes the loader accept it.
// The patcher refuses when any other imported symbol uses the version: that would turn a load error into a crash later.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

public enum ElfPatchOutcome { Patched, AlreadyWeak, VersionNotRequired, Refused }

public static class ElfVersionPatcher
{
    const uint ShtDynsym = 11, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;
    const ushort VerFlgWeak = 2;

    public static ElfPatchOutcome Weaken(byte[] elf, string version, ISet<string> allowedSymbols, out string detail)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only little-endian ELF64 is supported");
        var shoff = checked((int)U64(elf, 0x28));
        int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
        int Sec(int i) => shoff + i * shentsize;
        int verneed = -1, versym = -1, dynsym = -1;
        for (var i = 0; i < shnum; i++)
        {
            var type = U32(elf, Sec(i) + 4);
            if (type == ShtGnuVerneed) verneed = i;
            else if (type == ShtGnuVersym) versym = i;
            else if (type == ShtDynsym) dynsym = i;
        }
        if (verneed < 0) { detail = "no version-needs section"; return ElfPatchOutcome.VersionNotRequired; }
        var strtab = checked((int)U64(elf, Sec((int)U32(elf, Sec(verneed) + 40)) + 24));
        var vn = checked((int)U64(elf, Sec(verneed) + 24));
        var count = U32(elf, Sec(verneed) + 44);
        int flagsAt = -1, index = -1;
        string file = "";
        for (var n = 0; n < count && flagsAt < 0; n++)
        {
            var aux = vn + (int)U32(elf, vn + 8);
            for (var a = 0; a < U16(elf, vn + 2); a++)
            {
                if (Str(elf, strtab + (int)U32(elf, aux + 8)) == version)
                {
                    flagsAt = aux + 4; index = U16(elf, aux + 6); file = Str(elf, strtab + (int)U32(elf, vn + 4));
                    break;
                }
                aux += (int)U32(elf, aux + 12);
            }
            vn += (int)U32(elf, vn + 12);
        }
        if (flagsAt < 0) { detail = $"{version} is not required"; return ElfPatchOutcome.VersionNotRequired; }

        // Which imported symbols are bound to that version? Only the allowed anchor may be.
        var users = new List<string>();
        if (versym >= 0 && dynsym >= 0)
        {
            var symOff = checked((int)U64(elf, Sec(dynsym) + 24));
            var symCount = (int)(U64(elf, Sec(dynsym) + 32) / 24);
            var symStr = checked((int)U64(elf, Sec((int)U32(elf, Sec(dynsym) + 40)) + 24));
            var verOff = checked((int)U64(elf, Sec(versym) + 24));
            for (var s = 0; s < symCount; s++)
                if ((U16(elf, verOff + 2 * s) & 0x7fff) == index)
                    users.Add(Str(elf, symStr + (int)U32(elf, symOff + 24 * s)));
        }
        var foreign = users.FindAll(u => !allowedSymbols.Contains(u));
        if (foreign.Count > 0)
        {
            detail = $"{version} ({file}) is used by {string.Join(", ", foreign)}; weakening it could crash at call time";
            return ElfPatchOutcome.Refused;
        }
        if ((U16(elf, flagsAt) & VerFlgWeak) != 0) { detail = $"{version} already weak"; return ElfPatchOutcome.AlreadyWeak; }
        var flags = (ushort)(U16(elf, flagsAt) | VerFlgWeak);
        elf[flagsAt] = (byte)flags; elf[flagsAt + 1] = (byte)(flags >> 8);
        detail = $"weakened {version} ({file}), used by {string.Join(", ", users)}";
        return ElfPatchOutcome.Patched;
    }

    /// <summary>Patches a file in place by writing a sibling and renaming it (the original may be a hard link into
    /// the NuGet cache), keeping its timestamp so incremental copies stay quiet.</summary>
    public static ElfPatchOutcome PatchFile(string path, string version, ISet<string> allowedSymbols, out string detail)
    {
        var bytes = File.ReadAllBytes(path);
        var outcome = Weaken(bytes, version, allowedSymbols, out detail);
        if (outcome != ElfPatchOutcome.Patched) return outcome;
        var stamp = File.GetLastWriteTimeUtc(path);
        var tmp = path + ".patching";
        File.WriteAllBytes(tmp, bytes);
        File.SetLastWriteTimeUtc(tmp, stamp);
        File.Delete(path);   // unlink first: never write through a hard link into the NuGet cache
        File.Move(tmp, path);
        return outcome;
    }

    static ushort U16(byte[] b, int o) => (ushort)(b[o] | b[o + 1] << 8);
    static uint U32(byte[] b, int o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
    static ulong U64(byte[] b, int o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;
    static string Str(byte[] b, int o) { var e = o; while (b[e] != 0) e++; return Encoding.ASCII.GetString(b, o, e - o); }
}

#if !ELF_PATCHER_NO_MSBUILD
public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
{
    [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = [];

    public override bool Execute()
    {
        var allowed = new HashSet<string> { "_ZSt21ios_base_library_initv" };
        foreach (var item in Files)
        {
            var outcome = ElfVersionPatcher.PatchFile(item.ItemSpec, "GLIBCXX_3.4.32", allowed, out var detail);
            if (outcome == ElfPatchOutcome.Refused) Log.LogWarning($"{item.ItemSpec}: not patched: {detail}");
            else if (outcome == ElfPatchOutcome.Patched) Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"{item.ItemSpec}: {detail}");
        }
        return !Log.HasLoggedErrors;
    }
}
#endif
