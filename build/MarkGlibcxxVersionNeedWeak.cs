// One source, two uses: the MSBuild inline task below (RoslynCodeTaskFactory, used by build/ScalingInteractive.targets,
// imported by Directory.Build.targets here and shipped as buildTransitive/ in the package, on the copies of
// libLibTorchSharp.so in build and publish folders) and ScalingInteractive.Hosting.TorchNativeRemedy (compiled into
// the library with SCALINGINTERACTIVE_LIBRARY defined), which loads a patched private copy for hosts that load
// TorchSharp from the NuGet cache. Why: see build/ScalingInteractive.targets and README "Platform notes".
using System;
using System.IO;
using System.Text;
#if !SCALINGINTERACTIVE_LIBRARY
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
public class MarkGlibcxxVersionNeedWeak : Task
{
    [Required] public string Directory { get; set; } = "";
    [Required] public string FileName { get; set; } = "";
    [Required] public string VersionName { get; set; } = "";

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        string[] files = System.IO.Directory.GetFiles(Directory, FileName, SearchOption.AllDirectories);
        if (files.Length == 0) return true;
        if (ScalingInteractive.Hosting.ElfVersionNeeds.HostLibStdCxxHas(VersionName))
        {
            Log.LogMessage(MessageImportance.Low, "libstdc++ on this host defines " + VersionName + ": nothing to patch.");
            return true;
        }
        foreach (string file in files)
        {
            try
            {
                string outcome = ScalingInteractive.Hosting.ElfVersionNeeds.MarkWeak(file, VersionName);
                Log.LogMessage(MessageImportance.Normal, file + ": " + outcome);
            }
            catch (Exception ex)
            {
                Log.LogWarning("Could not mark " + VersionName + " weak in " + file + ": " + ex.Message);
            }
        }
        return true;
    }
}
#endif

namespace ScalingInteractive.Hosting
{
    /// <summary>Edits GNU symbol-version needs (.gnu.version_r) of an ELF64 little-endian shared library in place.</summary>
    internal static class ElfVersionNeeds
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlgWeak = 0x2;

        /// <summary>True when the system libstdc++ defines the symbol version (false when no libstdc++ is found).</summary>
        public static bool HostLibStdCxxHas(string version)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
            };
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (string path in candidates)
            {
                if (!File.Exists(path)) continue;
                byte[] bytes = File.ReadAllBytes(path);
                for (int i = 0; i + needle.Length <= bytes.Length; i++)
                {
                    int j = 0;
                    while (j < needle.Length && bytes[i + j] == needle[j]) j++;
                    if (j == needle.Length) return true;
                }
                return false;
            }
            return false;
        }

        /// <summary>
        /// Returns what was done: "patched", "already weak" or "no such version need"; with
        /// <paramref name="dryRun"/>, "would patch" instead of "patched" and the file is not written.
        /// </summary>
        public static string MarkWeak(string path, string versionName, bool dryRun = false)
        {
            byte[] elf = File.ReadAllBytes(path);
            ushort flags;
            int at = FindVersionNeedFlags(elf, versionName, out flags);
            if (at < 0) return "no such version need";
            if ((flags & VerFlgWeak) != 0) return "already weak";
            if (dryRun) return "would patch";
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                stream.Position = at;
                stream.Write(BitConverter.GetBytes((ushort)(flags | VerFlgWeak)), 0, 2);
            }
            return "patched";
        }

        /// <summary>Same as the file overload, on an ELF image in memory (edited in place unless <paramref name="dryRun"/>).</summary>
        public static string MarkWeak(byte[] elf, string versionName, bool dryRun = false)
        {
            ushort flags;
            int at = FindVersionNeedFlags(elf, versionName, out flags);
            if (at < 0) return "no such version need";
            if ((flags & VerFlgWeak) != 0) return "already weak";
            if (dryRun) return "would patch";
            byte[] patched = BitConverter.GetBytes((ushort)(flags | VerFlgWeak));
            elf[at] = patched[0];
            elf[at + 1] = patched[1];
            return "patched";
        }

        /// <summary>File offset of vna_flags of the Vernaux entry named <paramref name="versionName"/>, or -1.</summary>
        static int FindVersionNeedFlags(byte[] elf, string versionName, out ushort flags)
        {
            flags = 0;
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only ELF64 little-endian is supported");

            ulong shoff = BitConverter.ToUInt64(elf, 0x28);
            ushort shentsize = BitConverter.ToUInt16(elf, 0x3A);
            ushort shnum = BitConverter.ToUInt16(elf, 0x3C);
            if (shoff == 0 || shentsize < 64 || shoff + (ulong)shentsize * shnum > (ulong)elf.Length)
                throw new InvalidDataException("section header table out of range");

            for (int s = 0; s < shnum; s++)
            {
                int sh = checked((int)shoff + s * shentsize);
                uint type = BitConverter.ToUInt32(elf, sh + 4);
                if (type != ShtGnuVerneed) continue;
                ulong offset = BitConverter.ToUInt64(elf, sh + 0x18);
                uint link = BitConverter.ToUInt32(elf, sh + 0x28);
                uint count = BitConverter.ToUInt32(elf, sh + 0x2C); // sh_info: number of Verneed entries
                int strtab = checked((int)shoff + (int)link * shentsize);
                ulong strOffset = BitConverter.ToUInt64(elf, strtab + 0x18);

                int verneed = checked((int)offset);
                for (uint n = 0; n < count; n++)
                {
                    ushort auxCount = BitConverter.ToUInt16(elf, verneed + 2);
                    uint auxOffset = BitConverter.ToUInt32(elf, verneed + 8);
                    uint nextOffset = BitConverter.ToUInt32(elf, verneed + 12);
                    int aux = verneed + (int)auxOffset;
                    for (int a = 0; a < auxCount; a++)
                    {
                        uint nameOffset = BitConverter.ToUInt32(elf, aux + 8);
                        uint next = BitConverter.ToUInt32(elf, aux + 12);
                        if (ReadCString(elf, checked((int)strOffset + (int)nameOffset)) == versionName)
                        {
                            flags = BitConverter.ToUInt16(elf, aux + 4);
                            return aux + 4;
                        }
                        if (next == 0) break;
                        aux += (int)next;
                    }
                    if (nextOffset == 0) break;
                    verneed += (int)nextOffset;
                }
            }
            return -1;
        }

        static string ReadCString(byte[] bytes, int start)
        {
            int end = start;
            while (end < bytes.Length && bytes[end] != 0) end++;
            return Encoding.ASCII.GetString(bytes, start, end - start);
        }
    }
}
