// Every verb in this folder is a System.CommandLine Command; nothing outside Commands/ and Program.cs uses it.
global using System.CommandLine;
