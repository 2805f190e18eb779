using ScalingInteractive.Commands;

namespace ScalingInteractive.Tests.Commands;

public class CommandParsingTests
{
    private static CommandArguments Bind(string line, TestHost? host = null)
    {
        var command = new ProbeCommand();
        host ??= new TestHost();
        var parsed = CommandLineParser.Parse(line, name => host.TryGetVariable(name, out var v) ? CommandLineParser.VariableText(v) : null);
        Assert.Equal("#!probe", parsed.CommandName);
        return CommandBinder.BindText(command, parsed.Arguments);
    }

    private static string Error(string line, TestHost? host = null) => Assert.Throws<CommandException>(() => Bind(line, host)).Message;

    [Fact]
    public void Binds_every_kind_of_value_and_applies_defaults()
    {
        var args = Bind("#!probe --data \"my runs.csv\" --learning-rates [1e-3, 3e-3,1e-2] --sizes [64,128] --columns [\"N\",\"D\"] --quick");
        Assert.Equal("my runs.csv", args.Get<string>("--data"));
        Assert.Equal([1e-3, 3e-3, 1e-2], args.Get<double[]>("--learning-rates"));
        Assert.Equal([64, 128], args.Get<int[]>("sizes"));
        Assert.Equal(["N", "D"], args.Get<string[]>("--columns"));
        Assert.True(args.Get<bool>("--quick"));
        Assert.Equal(1000, args.Get<int>("--bootstrap"));
        Assert.Equal(1e-3, args.Get<double>("--delta"));
        Assert.Equal("chinchilla", args.Get<string>("--law"));
        Assert.False(args.IsGiven("--law"));
        Assert.True(args.IsGiven("--data"));
    }

    [Fact]
    public void Implicit_value_binds_to_the_implicit_parameter_and_allowed_values_ignore_case()
    {
        var args = Bind("#!probe POWER --data x");
        Assert.Equal("POWER", args.Get<string>("--law"));
    }

    [Fact]
    public void Csharp_variables_are_replaced_by_their_text_as_the_kernel_does()
    {
        var host = new TestHost();
        host.Variables["n"] = 250;
        host.Variables["path"] = "runs.csv";
        var args = Bind("#!probe --data @csharp:path --bootstrap @csharp:n", host);
        Assert.Equal("runs.csv", args.Get<string>("--data"));
        Assert.Equal(250, args.Get<int>("--bootstrap"));
        Assert.Contains("C# variable 'missing' that does not exist", Error("#!probe --data @csharp:missing", host));
    }

    [Fact]
    public void Unknown_parameter_lists_the_valid_ones()
    {
        string message = Error("#!probe --data x --bootstraps 5");
        Assert.Contains("unknown parameter '--bootstraps'", message);
        Assert.Contains("--bootstrap", message);
        Assert.Contains("--learning-rates", message);
    }

    [Theory]
    [InlineData("#!probe --data x --bootstrap many", "--bootstrap 'many' is not an integer")]
    [InlineData("#!probe --data x --bootstrap 1.5", "--bootstrap '1.5' is not an integer")]
    [InlineData("#!probe --data x --bootstrap -1", "-1 is below the minimum 0")]
    [InlineData("#!probe --data x --bootstrap 100001", "above the maximum 100000")]
    [InlineData("#!probe --data x --learning-rates [1e-3,-2]", "--learning-rates [0.001,-2] is not accepted: -2 is below the minimum 0")]
    [InlineData("#!probe --data x --sizes [64,x]", "is not a JSON list of integers")]
    [InlineData("#!probe --data x --sizes []", "the list is empty")]
    [InlineData("#!probe --data x --law kaplan", "--law 'kaplan' is not accepted; use one of: chinchilla, power")]
    [InlineData("#!probe --bootstrap 5", "missing required parameter --data")]
    [InlineData("#!probe --data x --data y", "--data is given more than once")]
    [InlineData("#!probe --data x --quick yes", "--quick is a flag and takes no value")]
    [InlineData("#!probe --data", "--data needs a value")]
    [InlineData("#!probe --data \"unterminated", "Unterminated quoted value")]
    [InlineData("#!probe --data x --sizes [1,2", "Unbalanced JSON literal")]
    public void Bad_values_name_the_parameter_the_value_and_what_is_accepted(string line, string expected)
    {
        Assert.Contains(expected, Error(line));
    }

    [Fact]
    public void Values_bound_by_a_kernel_are_validated_the_same_way()
    {
        var command = new ProbeCommand();
        var args = CommandBinder.BindValues(command, new Dictionary<string, object?>
        {
            ["Data"] = "runs.csv", ["Bootstrap"] = null, ["LearningRates"] = new[] { 0.1, 0.2 }, ["Quick"] = false, ["Law"] = null,
        });
        Assert.Equal(1000, args.Get<int>("--bootstrap"));
        Assert.False(args.Get<bool>("--quick"));
        Assert.Equal([0.1, 0.2], args.Get<double[]>("--learning-rates"));
        var error = Assert.Throws<CommandException>(() => CommandBinder.BindValues(command, new Dictionary<string, object?> { ["Data"] = "x", ["Bootstrap"] = -5 }));
        Assert.Contains("-5 is below the minimum 0", error.Message);
        Assert.Contains("missing required parameter --data", Assert.Throws<CommandException>(() => CommandBinder.BindValues(command, new Dictionary<string, object?>())).Message);
    }

    [Fact]
    public async Task Unknown_command_lists_the_valid_ones()
    {
        var error = await Assert.ThrowsAsync<CommandException>(() => CommandCatalog.InvokeAsync("#!scaling-nope --x 1", new TestHost()));
        Assert.Contains("Unknown magic command '#!scaling-nope'", error.Message);
        Assert.Contains("#!scaling-help", error.Message);
    }

    [Fact]
    public async Task Help_lists_every_command_with_its_parameters()
    {
        var host = new TestHost();
        await CommandCatalog.InvokeAsync("#!scaling-help", host);
        var help = Assert.IsType<ScalingInteractive.Commands.CommandHelp>(Assert.Single(host.Shown).Value);
        Assert.Equal(CommandCatalog.All.Select(c => c.Name), help.Commands.Select(c => c.Name));
        string text = help.ToText();
        foreach (var command in CommandCatalog.All)
        {
            Assert.Contains(command.Name, text);
            foreach (var p in command.Parameters) Assert.Contains(p.Name, text);
        }
    }

    [Theory]
    [InlineData("Max", typeof(int))]
    [InlineData("--Max-items", typeof(int))]
    [InlineData("--items", typeof(decimal))]
    [InlineData("--target-kernel-name", typeof(string))]
    public void Invalid_declarations_are_refused(string name, Type type)
    {
        Assert.Throws<ArgumentException>(() => new CommandParameter(name, type, "d"));
    }

    [Fact]
    public void Kebab_names_map_to_the_kernels_property_names()
    {
        Assert.Equal("MaxItems", new CommandParameter("--max-items", typeof(int), "d").PropertyName);
        Assert.Equal("LearningRates", new CommandParameter("--learning-rates", typeof(double[]), "d").PropertyName);
    }

    [Fact]
    public void A_parameter_that_accepts_a_variable_takes_a_bare_name_else_a_path()
    {
        string file = Path.GetTempFileName();
        try
        {
            var host = new TestHost();
            var model = new object();
            host.Variables["net"] = model;
            Assert.Same(model, Bind("#!probe --data x --model net").GetVariableOrPath("--model", host, "a model"));
            Assert.Equal(file, Bind($"#!probe --data x --model \"{file}\"").GetVariableOrPath("--model", host, "a model"));
            Assert.Null(Bind("#!probe --data x").GetVariableOrPath("--model", host, "a model"));
            string message = Assert.Throws<CommandException>(() => Bind("#!probe --data x --model nowhere").GetVariableOrPath("--model", host, "a TorchSharp module")).Message;
            Assert.Contains("--model 'nowhere' is neither a C# variable", message);
            Assert.Contains("nor an existing file or folder", message);
            Assert.Contains("a TorchSharp module", message);
            Assert.Contains("@csharp:myVariable", message);
            Assert.Contains("bare name", message);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Help_says_which_parameters_accept_a_variable()
    {
        var parameter = new ProbeCommand().FindParameter("--model")!;
        Assert.True(parameter.AcceptsVariable);
        Assert.StartsWith(CommandParameter.VariableOrPath, parameter.Accepts);
        Assert.Throws<ArgumentException>(() => new CommandParameter("--n", typeof(int), "d") { AcceptsVariable = true });
        foreach (string name in new[] { "#!scaling-fit --data", "#!lora-spectrum --base", "#!lora-spectrum --tuned", "#!lora-spectrum --adapter" })
        {
            var (command, p) = (CommandCatalog.Get(name.Split(' ')[0]), name.Split(' ')[1]);
            Assert.True(command.FindParameter(p)!.AcceptsVariable, name);
        }
        string help = new ScalingInteractive.Commands.CommandHelp([CommandCatalog.Get("lora-spectrum")]).ToText();
        Assert.Contains(CommandParameter.VariableOrPath, help);
    }

    [Fact]
    public void Every_shared_parameter_has_one_type_and_one_meaning_across_commands()
    {
        var all = CommandCatalog.All.SelectMany(c => c.Parameters.Select(p => (Command: c.Name, Parameter: p))).ToList();
        foreach (var group in all.GroupBy(x => x.Parameter.Name).Where(g => g.Count() > 1))
        {
            Assert.Single(group.Select(x => x.Parameter.Type).Distinct());
            Assert.Single(group.Select(x => x.Parameter.AcceptsVariable).Distinct());
        }
        Type? TypeOf(string name) => all.Where(x => x.Parameter.Name == name).Select(x => x.Parameter.Type).Distinct().SingleOrDefault();
        Assert.Equal(typeof(int[]), TypeOf("--seeds"));
        Assert.Equal(typeof(int), TypeOf("--seed"));
        Assert.Equal(typeof(double), TypeOf("--epsilon"));
        Assert.Equal(typeof(double[]), TypeOf("--epsilon-sweep"));
        Assert.Equal(typeof(int), TypeOf("--batch-size"));
        Assert.DoesNotContain(all, x => x.Parameter.Name == "--batch");
        // --data is only "the data to fit/analyse"; corpora are --corpus and data folders --data-dir.
        Assert.Equal(["#!scaling-fit"], all.Where(x => x.Parameter.Name == "--data").Select(x => x.Command));
        Assert.Equal(["#!proxy-train", "#!proxy-sweep"], all.Where(x => x.Parameter.Name == "--corpus").Select(x => x.Command));
        Assert.Equal(["#!intrinsic-dim", "#!lora-experiment"], all.Where(x => x.Parameter.Name == "--data-dir").Select(x => x.Command));
        Assert.Equal(0.5, CommandCatalog.Get("lora-spectrum").FindParameter("--epsilon")!.Default);
    }

    [Fact]
    public void Every_magic_line_of_the_bundled_notebooks_uses_declared_parameters()
    {
        int lines = 0;
        foreach (string path in Directory.GetFiles(RepoPaths.Notebooks, "*.dib"))
            foreach (string line in File.ReadLines(path).Where(l => l.StartsWith("#!", StringComparison.Ordinal)))
            {
                var parsed = CommandLineParser.Parse(line, _ => "@");
                if (CommandCatalog.Find(parsed.CommandName) is not { } command) continue; // #!csharp, #!markdown, ...
                lines++;
                // Bare variable names (the kernel extension substitutes their values) stand in as a value of the
                // parameter's type; the rest binds as written.
                var arguments = parsed.Arguments.Select(a =>
                {
                    bool identifier = a.Value is { Length: > 0 } v && char.IsLetter(v[0]) && v.All(c => char.IsLetterOrDigit(c) || c == '_');
                    var declared = a.Name is null ? command.Parameters.First(p => p.AllowImplicitName) : command.FindParameter(a.Name);
                    // A string with allowed values named by a variable (#!sweep-submit --scheduler scheduler) stands in as an allowed value.
                    if (identifier && declared is { Type: var st } && st == typeof(string) && !declared.AllowedValues.IsEmpty) return a with { Value = declared.AllowedValues[0] };
                    if (!(identifier && declared is { Type: var t } && t != typeof(string))) return a;
                    var type = declared.Type;
                    // An integer stands in at the parameter's minimum where it has one (#!lora-experiment --width width: at least 8).
                    string integer = declared.Minimum is { } min && min > 1 ? ((int)Math.Ceiling(min)).ToString(System.Globalization.CultureInfo.InvariantCulture) : "1";
                    return a with { Value = type == typeof(int) ? integer : type == typeof(double) ? "0.1" : type == typeof(int[]) ? "[1]" : type == typeof(double[]) ? "[0.1]" : "x" };
                }).ToList();
                var exception = Record.Exception(() => CommandBinder.BindText(command, arguments));
                Assert.True(exception is null, $"{Path.GetFileName(path)}: {line}\n{exception?.Message}");
            }
        Assert.True(lines >= 10, $"only {lines} magic lines found");
    }

    [Fact]
    public void Kernel_json_values_bind_with_the_library_messages_and_bare_names_stand_for_variables()
    {
        var command = CommandCatalog.Get("scaling-fit");
        static Dictionary<string, System.Text.Json.JsonElement> Json(string json) =>
            System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, System.Text.Json.JsonElement>>(json)!;
        // What the kernel sends for "--law power --data points --bootstrap 200": camelCase keys, numbers as JSON, plus its own fields.
        var bound = CommandBinder.BindJson(command, Json("""{"law":"power","data":"points","bootstrap":200,"invokedDirective":"#!scaling-fit","targetKernelName":"csharp"}"""));
        Assert.Equal(200, bound.Get<int>("--bootstrap"));
        Assert.Equal("points", bound.Get<string>("--data"));
        // A wrong-typed value names the parameter, the value and what is accepted (the kernel said DNI106 ... Nullable`1).
        var error = Assert.Throws<CommandException>(() => CommandBinder.BindJson(command, Json("""{"law":"power","data":"points","bootstrap":"abc"}""")));
        Assert.Contains("--bootstrap 'abc' is not an integer", error.Message);
        // A bare identifier naming a variable stands for its value where the parameter cannot take the name literally;
        // --data accepts a variable, so the command receives the name and resolves the object itself.
        var variables = new Dictionary<string, object?> { ["resamples"] = 300, ["points"] = new object() };
        var substituted = CommandBinder.BindJson(command, Json("""{"law":"power","data":"points","bootstrap":"resamples"}"""), n => variables.GetValueOrDefault(n));
        Assert.Equal(300, substituted.Get<int>("--bootstrap"));
        Assert.Equal("points", substituted.Get<string>("--data"));
        var lists = CommandCatalog.Get("intrinsic-dim");
        var dims = CommandBinder.BindJson(lists, Json("""{"task":"mnist-mlp","dims":"myDims","seeds":"mySeeds"}"""),
            n => n switch { "myDims" => new[] { 30, 300 }, "mySeeds" => new List<int> { 0, 1 }, _ => null });
        Assert.Equal([30, 300], dims.Get<int[]>("--dims"));
        Assert.Equal([0, 1], dims.Get<int[]>("--seeds"));
        // An unknown bare name is left as typed and fails with the usual message.
        Assert.Contains("'nothing' is not", Assert.Throws<CommandException>(() =>
            CommandBinder.BindJson(command, Json("""{"law":"power","data":"p","bootstrap":"nothing"}"""), _ => null)).Message);
    }
}
